package chatlog

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/throttle"
)

// A spool is the append-only, segmented log of one destination.
//
// Positions are LSNs: byte offsets in the destination's whole log since it was
// created. A segment file is named after the LSN of its first byte, so an
// entry's LSN is base+offset and the delivered cursor is one number. Segments
// roll at segSize; a segment is deleted once the persisted cursor has passed
// its end. Only the writer goroutine writes segment files; the deliverer reads
// them through separate file handles, never past the committed (fsynced) LSN.
//
// A failed write never leaves the spool unusable: the bytes of the failed
// batch are cut off (the on-disk spool holds only whole, committed entries
// plus at worst a torn tail that Open truncates), the handle is dropped, and
// the next batch reopens the active segment — or creates the next one — and
// tries again.
type spool struct {
	dir     string
	max     int64
	segSize int64
	log     *slog.Logger

	reqs chan *appendReq
	// bytes is the spool's disk footprint plus space reserved by queued
	// appends; it is what MaxSpoolBytes bounds.
	bytes atomic.Int64

	// spooled and failedCount count appended and refused entries;
	// failLog and recoverLog rate-limit the log lines about failures.
	spooled, failedCount atomic.Uint64
	failLog, recoverLog  throttle.Every

	mu        sync.Mutex
	segs      []segment // ascending by base; the last is the active one
	committed uint64    // LSN up to which entries are fsynced
	ack       uint64    // LSN up to which entries are delivered and the cursor persisted
	oldest    time.Time // when the oldest undelivered entry was committed (zero: none)
	notify    chan struct{}

	active *os.File // writer goroutine only; nil after a failure until the next batch reopens it
	broken bool     // writer goroutine only: the last batch failed
	done   chan struct{}
}

type segment struct {
	base uint64
	size int64
}

type appendReq struct {
	buf  []byte // encoded entry (header + body)
	done chan error
}

const cursorFile = "cursor"

func segName(base uint64) string { return fmt.Sprintf("%020d.seg", base) }

// openSpool opens (or creates) the spool in dir, truncates a torn tail, and
// starts its writer.
func openSpool(dir string, max, segSize int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	s := &spool{dir: dir, max: max, segSize: segSize, log: log,
		reqs: make(chan *appendReq, 1024), notify: make(chan struct{}, 1), done: make(chan struct{})}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range names {
		name, ok := strings.CutSuffix(de.Name(), ".seg")
		if !ok {
			continue
		}
		base, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, segment{base: base, size: fi.Size()})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmp.Compare(a.base, b.base) })

	ack, cursorOK := readCursor(filepath.Join(dir, cursorFile))
	if len(s.segs) == 0 {
		// A fresh spool (or one whose segments were all removed by hand):
		// continue numbering after the cursor so LSNs never go backwards.
		s.segs = []segment{{base: ack}}
		f, err := os.OpenFile(filepath.Join(dir, segName(ack)), os.O_CREATE|os.O_RDWR, fileMode)
		if err != nil {
			return nil, err
		}
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
		s.active = f
	} else {
		last := &s.segs[len(s.segs)-1]
		f, err := os.OpenFile(filepath.Join(dir, segName(last.base)), os.O_RDWR, fileMode)
		if err != nil {
			return nil, err
		}
		valid, err := scanValid(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if valid < last.size {
			// A torn tail: the process died between write and fsync (or
			// mid-write). Nothing past it was ever acknowledged to a caller,
			// because Record returns only after the fsync that covers it.
			log.Warn("chatlog: truncating torn spool tail", "dir", dir, "segment", segName(last.base), "valid", valid, "size", last.size)
			if err := f.Truncate(valid); err != nil {
				f.Close()
				return nil, err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, err
			}
			last.size = valid
		}
		s.active = f
	}
	last := s.segs[len(s.segs)-1]
	s.committed = last.base + uint64(last.size)
	first := s.segs[0].base
	switch {
	case !cursorOK || ack < first:
		// No cursor, or segments before it were already deleted: start at
		// the oldest record we still have (duplicates are allowed, loss is not).
		ack = first
	case ack > s.committed:
		ack = s.committed
	}
	s.ack = ack
	if s.committed > s.ack {
		// Replayed records are overdue: deliver them without waiting for a
		// batch interval.
		s.oldest = time.Unix(0, 0)
	}
	var total int64
	for _, sg := range s.segs {
		total += sg.size
	}
	s.bytes.Store(total)
	go s.writer()
	return s, nil
}

// scanValid returns the length of the longest prefix of f made of valid
// entries.
func scanValid(f *os.File) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 256<<10)
	var off int64
	for {
		_, n, err := readEntry(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, errShortEntry) || errors.Is(err, errCorruptEntry) {
				return off, nil
			}
			return off, err
		}
		off += int64(n)
	}
}

// readEntry reads one entry from r. It returns io.EOF at a clean end,
// errShortEntry at a partial entry and errCorruptEntry for garbage.
func readEntry(r *bufio.Reader) (entry, int, error) {
	hdr, err := r.Peek(entryHeaderLen)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(hdr) == 0 {
				return entry{}, 0, io.EOF
			}
			return entry{}, 0, errShortEntry
		}
		return entry{}, 0, err
	}
	n := binary.LittleEndian.Uint32(hdr[0:4])
	if n < bodyFixedLen || n > maxEntryBody {
		return entry{}, 0, errCorruptEntry
	}
	buf := make([]byte, entryHeaderLen+int(n))
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return entry{}, 0, errShortEntry
		}
		return entry{}, 0, err
	}
	return decodeEntry(buf)
}

func readCursor(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 12 {
		return 0, false
	}
	if crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:8]), true
}

// writeCursor persists the delivered LSN atomically (write, fsync, rename,
// fsync the directory), so after a crash the cursor is either the old or the
// new value and never points past an undelivered record.
func writeCursor(dir string, lsn uint64) error {
	b := binary.LittleEndian.AppendUint64(nil, lsn)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, cursorFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, cursorFile)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// errSpoolFull is returned by enqueue when the entry would push the spool
// past its bound.
var errSpoolFull = errors.New("chatlog: spool full")

// enqueue reserves space and hands the entry to the writer. It never waits
// for disk space: a full spool drops the entry so chat is never blocked by a
// destination that is down.
func (s *spool) enqueue(ctx context.Context, buf []byte) (*appendReq, error) {
	n := int64(len(buf))
	if s.bytes.Add(n) > s.max {
		s.bytes.Add(-n)
		return nil, errSpoolFull
	}
	req := &appendReq{buf: buf, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
		return req, nil
	case <-ctx.Done():
		// The queue is full because the disk is slow; the caller's
		// deadline wins.
		s.bytes.Add(-n)
		return nil, ctx.Err()
	}
}

// writer is the group-commit loop: it takes every queued append, writes them
// with one write and covers them with one fsync. Under load the batch grows
// with the fsync latency, so the fsync rate stays bounded while each caller
// waits at most about two fsyncs.
func (s *spool) writer() {
	defer close(s.done)
	var batch []*appendReq
	var buf []byte
	for req := range s.reqs {
		batch = append(batch[:0], req)
		size := int64(len(req.buf))
	drain:
		for size < s.segSize {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				size += int64(len(r.buf))
			default:
				break drain
			}
		}
		err := s.writeBatch(batch, &buf)
		// Counted before the callers are told, so Stats agrees with every
		// Record that has returned.
		if err != nil {
			s.failed(len(batch), err)
		} else {
			s.spooled.Add(uint64(len(batch)))
		}
		for _, r := range batch {
			r.done <- err
		}
		clear(batch)
	}
	if s.active != nil {
		_ = s.active.Sync()
		_ = s.active.Close()
	}
}

// failed counts n entries that could not be appended and logs it, at most
// every 10 s.
func (s *spool) failed(n int, err error) {
	s.failedCount.Add(uint64(n))
	if s.failLog.Allow(time.Now(), logEvery) {
		s.log.Warn("chatlog: cannot write to the spool; records refused (retried with the next record)",
			"dir", s.dir, "err", err, "failed_total", s.failedCount.Load())
	}
}

func (s *spool) writeBatch(batch []*appendReq, buf *[]byte) error {
	b := (*buf)[:0]
	for _, r := range batch {
		b = append(b, r.buf...)
	}
	*buf = b
	if err := s.append(b); err != nil {
		s.bytes.Add(-int64(len(b)))
		s.broken = true
		return err
	}
	if s.broken {
		s.broken = false
		if s.recoverLog.Allow(time.Now(), logEvery) {
			s.log.Info("chatlog: spool writable again", "dir", s.dir, "failed_total", s.failedCount.Load())
		}
	}
	return nil
}

// append writes b at the end of the active segment, rolling first when due,
// and fsyncs it. On failure nothing of b remains committed.
func (s *spool) append(b []byte) error {
	if s.active == nil {
		if err := s.reopen(); err != nil {
			return fmt.Errorf("reopen spool segment: %w", err)
		}
	}
	s.mu.Lock()
	last := s.segs[len(s.segs)-1]
	drained := s.ack == s.committed
	s.mu.Unlock()
	// Roll when the segment is full, and also early when everything in it
	// was delivered: the active segment is never deleted, so rolling lets
	// the delivered one go instead of holding up to segSize of old records.
	if last.size > 0 && (last.size+int64(len(b)) > s.segSize || drained && last.size >= s.segSize/16) {
		if err := s.roll(); err != nil {
			return fmt.Errorf("roll spool segment: %w", err)
		}
		s.mu.Lock()
		last = s.segs[len(s.segs)-1]
		s.mu.Unlock()
	}
	if _, err := s.active.WriteAt(b, last.size); err != nil {
		// Possibly a torn write (ENOSPC, EFBIG after part of b).
		s.discard(last.size)
		return err
	}
	if err := s.active.Sync(); err != nil {
		// After a failed fsync the page cache state is unknown; cut the
		// batch off so no caller's record is half there.
		s.discard(last.size)
		return err
	}
	s.mu.Lock()
	s.segs[len(s.segs)-1].size += int64(len(b))
	if s.committed == s.ack {
		s.oldest = time.Now()
	}
	s.committed += uint64(len(b))
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// discard undoes a failed append: it cuts the active segment back to size,
// its committed length, and drops the handle, whose state after a failed
// write or fsync is not to be trusted. If the truncation fails too, the next
// batch's reopen truncates before anything is appended, so garbage never
// sits between records.
func (s *spool) discard(size int64) {
	if err := s.active.Truncate(size); err != nil {
		s.log.Warn("chatlog: cannot cut a failed write off the spool; retried with the next record", "dir", s.dir, "err", err)
	}
	_ = s.active.Close()
	s.active = nil
}

// reopen opens the last segment again after a failure, cutting it back to
// its committed length and making that durable before anything is
// appended.
func (s *spool) reopen() error {
	s.mu.Lock()
	last := s.segs[len(s.segs)-1]
	s.mu.Unlock()
	path := filepath.Join(s.dir, segName(last.base))
	flag := os.O_RDWR
	if last.size == 0 {
		// Never written: it may not exist yet (a roll failed after it was
		// counted in segs, or before it was created).
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, fileMode)
	if err != nil {
		return err
	}
	if err := f.Truncate(last.size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if last.size == 0 {
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
	}
	s.active = f
	return nil
}

// roll closes the active segment and starts the next one at the committed
// LSN. Every committed entry was fsynced when it was appended, so closing
// loses nothing; if creating the next segment fails, the next batch reopens
// the old one and rolls again.
func (s *spool) roll() error {
	if err := s.active.Close(); err != nil {
		s.log.Warn("chatlog: closing a full spool segment", "dir", s.dir, "err", err)
	}
	s.active = nil
	s.mu.Lock()
	base := s.committed
	s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, segName(base)), os.O_CREATE|os.O_RDWR|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.active = f
	s.mu.Lock()
	s.segs = append(s.segs, segment{base: base})
	s.mu.Unlock()
	return nil
}

// close stops the writer after the queued appends are written. Callers must
// ensure no enqueue is running or follows.
func (s *spool) close() {
	close(s.reqs)
	<-s.done
}

// pending returns the undelivered byte count and when the oldest undelivered
// entry was committed.
func (s *spool) pending() (uint64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed - s.ack, s.oldest
}

// read returns committed entries starting at from, at most maxEntries and
// (after the first) at most maxBytes of cost(entry), and the LSN after the
// last returned entry. A corrupt entry in a closed segment (disk damage: the
// writer fsyncs every segment before rolling) skips the rest of that segment.
func (s *spool) read(ctx context.Context, from uint64, maxEntries, maxBytes int, cost func(*entry) int) ([]entry, uint64, error) {
	var out []entry
	bytes := 0
	for {
		if err := ctx.Err(); err != nil {
			return out, from, err
		}
		s.mu.Lock()
		committed := s.committed
		i, _ := slices.BinarySearchFunc(s.segs, from, func(sg segment, lsn uint64) int {
			return cmp.Compare(sg.base, lsn)
		})
		// i is the first segment with base >= from; step back unless it starts at from.
		if i == len(s.segs) || s.segs[i].base > from {
			i--
		}
		if i < 0 {
			s.mu.Unlock()
			return out, from, fmt.Errorf("chatlog: LSN %d is before the spool's first segment", from)
		}
		seg := s.segs[i]
		end := committed
		closed := i < len(s.segs)-1
		if closed {
			end = s.segs[i+1].base
		}
		s.mu.Unlock()
		if from >= committed {
			return out, from, nil
		}
		if from >= end {
			from = end
			continue
		}
		f, err := os.Open(filepath.Join(s.dir, segName(seg.base)))
		if err != nil {
			return out, from, err
		}
		r := bufio.NewReaderSize(io.NewSectionReader(f, int64(from-seg.base), int64(end-from)), 256<<10)
		full := false
		for from < end {
			e, n, err := readEntry(r)
			if err != nil {
				if !errors.Is(err, errCorruptEntry) && !errors.Is(err, errShortEntry) && !errors.Is(err, io.EOF) {
					f.Close()
					return out, from, err
				}
				if !closed {
					f.Close()
					return out, from, fmt.Errorf("chatlog: corrupt entry at LSN %d in %s: %w", from, s.dir, err)
				}
				s.log.Error("chatlog: corrupt spool entry; skipping the rest of the segment", "dir", s.dir, "segment", segName(seg.base), "lsn", from)
				from = end
				break
			}
			c := cost(&e)
			if len(out) > 0 && (len(out) >= maxEntries || bytes+c > maxBytes) {
				full = true
				break
			}
			e.lsn = from
			out = append(out, e)
			bytes += c
			from += uint64(n)
		}
		f.Close()
		if full {
			return out, from, nil
		}
	}
}

// acknowledge records that everything before lsn was delivered: it persists
// the cursor and then deletes segments wholly before it.
func (s *spool) acknowledge(lsn uint64) error {
	if err := writeCursor(s.dir, lsn); err != nil {
		return err
	}
	s.mu.Lock()
	s.ack = lsn
	if s.committed == s.ack {
		s.oldest = time.Time{}
	} else {
		s.oldest = time.Now()
	}
	var drop []segment
	for len(s.segs) > 1 && s.segs[1].base <= lsn {
		drop = append(drop, s.segs[0])
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	for _, sg := range drop {
		if err := os.Remove(filepath.Join(s.dir, segName(sg.base))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		s.bytes.Add(-sg.size)
	}
	return nil
}
