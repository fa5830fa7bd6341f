package chatlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// s3Object is one S3 log object: the records of one room within one hour.
type s3Object struct {
	key     string
	body    []byte // gzip-compressed NDJSON
	entries []entry
}

// s3Objects groups a batch into objects keyed per spec §8:
//
//	AWSLogs/<account>/IVSChatLogs/1.0/<region>/room_<roomId>/<YYYY>/<MM>/<DD>/<HH>/
//	  <account>_IVSChatLogs_1.0_<region>_room_<roomId>_<YYYYMMDDTHHMMZ>_<hash>.log.gz
//
// The timestamp is the first record's minute; the hash is over the
// uncompressed content, so delivering the same records again (a retry after
// an unacknowledged PUT) produces the same key and overwrites instead of
// duplicating.
func s3Objects(account, region string, batch []entry) ([]s3Object, error) {
	type groupKey struct {
		room string
		hour int64
	}
	var order []groupKey
	groups := map[groupKey][]entry{}
	for _, e := range batch {
		k := groupKey{e.roomID, e.at.Unix() / 3600}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	out := make([]s3Object, 0, len(order))
	for _, k := range order {
		es := groups[k]
		var raw bytes.Buffer
		for _, e := range es {
			raw.Write(e.record)
			raw.WriteByte('\n')
		}
		sum := sha256.Sum256(raw.Bytes())
		t := es[0].at.UTC()
		key := "AWSLogs/" + account + "/IVSChatLogs/1.0/" + region + "/room_" + k.room + "/" +
			t.Format("2006/01/02/15") + "/" +
			account + "_IVSChatLogs_1.0_" + region + "_room_" + k.room + "_" + t.Format("20060102T1504Z") + "_" +
			hex.EncodeToString(sum[:8]) + ".log.gz"
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write(raw.Bytes()); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		out = append(out, s3Object{key: key, body: gz.Bytes(), entries: es})
	}
	return out, nil
}

// safePath joins untrusted name components under root, escaping "." and ".."
// components so a bucket, group or stream name cannot leave root.
func safePath(root string, parts ...string) string {
	elems := []string{root}
	for _, p := range parts {
		for _, c := range strings.Split(p, "/") {
			switch c {
			case "":
				continue
			case ".", "..":
				c = strings.ReplaceAll(c, ".", "%2E")
			}
			elems = append(elems, c)
		}
	}
	return filepath.Join(elems...)
}

// writeFileAtomic writes a whole object: temp file, fsync, rename, fsync dir,
// so a reader never sees a partial object and a crash leaves none.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
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
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// appendLines appends records as lines and fsyncs. A retry after a crash may
// append a record twice (at least once); it never appends part of one
// without the rest being retried.
func appendLines(path string, es []entry) error {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, fileMode)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, e := range es {
		b.Write(e.record)
		b.WriteByte('\n')
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// localS3Sink writes S3 objects to <root>/<bucket>/<key>.
type localS3Sink struct {
	root, bucket, region, account string
	batchBytes                    int
	linger                        time.Duration
}

func (s *localS3Sink) batching() (time.Duration, int, int) {
	return s.linger, 1 << 30, s.batchBytes
}
func (s *localS3Sink) cost(e *entry) int { return len(e.record) + 1 }

func (s *localS3Sink) deliver(ctx context.Context, batch []entry) ([]entry, error) {
	return deliverS3Objects(ctx, s.account, s.region, batch, func(_ context.Context, key string, body []byte) error {
		return writeFileAtomic(safePath(s.root, s.bucket, key), body)
	})
}

// deliverS3Objects groups batch into S3 log objects and writes each with put.
// It returns the entries of the objects that could not be written, with the
// first error, so only those are retried.
func deliverS3Objects(ctx context.Context, account, region string, batch []entry, put func(ctx context.Context, key string, body []byte) error) ([]entry, error) {
	objs, err := s3Objects(account, region, batch)
	if err != nil {
		return batch, err
	}
	var remaining []entry
	var firstErr error
	for i, o := range objs {
		if err := ctx.Err(); err != nil {
			return append(remaining, entriesOf(objs[i:])...), err
		}
		if err := put(ctx, o.key, o.body); err != nil {
			remaining = append(remaining, o.entries...)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return remaining, firstErr
}

func entriesOf(objs []s3Object) []entry {
	var es []entry
	for _, o := range objs {
		es = append(es, o.entries...)
	}
	return es
}

// cwlStream is the log stream IVS Chat writes a room's records to.
func cwlStream(roomID string) string { return "aws/IVSChatLogs/1.0/room_" + roomID }

// localCWLSink appends to <root>/<group>/<stream>.log.
type localCWLSink struct {
	root, group string
	linger      time.Duration
}

func (s *localCWLSink) batching() (time.Duration, int, int) {
	return s.linger, cwlMaxEvents, cwlMaxBytes
}
func (s *localCWLSink) cost(e *entry) int { return len(e.record) + cwlEventOverhead }

func (s *localCWLSink) deliver(ctx context.Context, batch []entry) ([]entry, error) {
	var remaining []entry
	var firstErr error
	for _, g := range groupByRoom(batch) {
		if err := ctx.Err(); err != nil {
			return append(remaining, g...), err
		}
		if err := appendLines(safePath(s.root, s.group, cwlStream(g[0].roomID)+".log"), g); err != nil {
			remaining = append(remaining, g...)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return remaining, firstErr
}

// groupByRoom splits a batch by room, keeping spool order within a room.
func groupByRoom(batch []entry) [][]entry {
	idx := map[string]int{}
	var out [][]entry
	for _, e := range batch {
		i, ok := idx[e.roomID]
		if !ok {
			i = len(out)
			idx[e.roomID] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], e)
	}
	return out
}

// localFirehoseSink appends to <root>/<stream>.log.
type localFirehoseSink struct {
	root, stream string
	linger       time.Duration
}

func (s *localFirehoseSink) batching() (time.Duration, int, int) {
	return s.linger, firehoseMaxRecords, firehoseMaxBytes
}
func (s *localFirehoseSink) cost(e *entry) int { return len(e.record) + 1 }

func (s *localFirehoseSink) deliver(ctx context.Context, batch []entry) ([]entry, error) {
	if err := ctx.Err(); err != nil {
		return batch, err
	}
	if err := appendLines(safePath(s.root, s.stream+".log"), batch); err != nil {
		return batch, err
	}
	return nil, nil
}
