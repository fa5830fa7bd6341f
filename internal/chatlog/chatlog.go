// Package chatlog records the MESSAGE and EVENT frames of rooms that reference
// ACTIVE logging configurations, durably, to S3, CloudWatch Logs and Firehose
// destinations (spec/messaging.md §8).
//
// # Flow
//
// Record encodes one record and appends it to an on-disk spool per
// destination; it returns only after the spool append is fsynced, so a nil
// return means the record survives kill -9. Concurrent Record calls share one
// fsync (group commit). A deliverer goroutine per destination reads the spool,
// batches, sends with retries (exponential backoff with jitter, no limit on
// attempts), and only after the destination acknowledged a batch persists its
// cursor and deletes spool segments wholly before it. Open replays whatever a
// previous process left undelivered. Delivery is therefore at least once.
//
// # Record IDs and duplicates
//
// The record format is exactly the spec's
// {"event_timestamp","type","version","payload"}; nothing is added. The record
// ID is the payload's "Id" (the frame ID every MESSAGE and EVENT carries,
// unique per frame), which the spool keeps byte for byte. A record replayed
// after a crash or a failed attempt is byte-identical, so consumers
// deduplicate on payload.Id. S3 object names end in a hash of their content,
// so re-sending the same batch rewrites the same object instead of adding one.
//
// # Destinations
//
// A destination is identified by kind and name ("s3:<bucket>",
// "cloudWatchLogs:<group>", "firehose:<stream>"); logging configurations that
// name the same destination share its spool and a record is written to it
// once. For each kind, an empty Endpoint selects the embedded default, which
// writes the same objects and streams as files under LocalDir:
//
//	s3/<bucket>/<key>                     gzip NDJSON (zcat-readable)
//	cloudwatchlogs/<group>/<stream>.log   NDJSON, one record per line
//	firehose/<stream>.log                 NDJSON, one record per line
//
// # Spool bound
//
// MaxSpoolBytes bounds each destination's spool on disk (so total disk use is
// at most MaxSpoolBytes times the number of destinations). When a record
// would pass the bound it is dropped for that destination only — other
// destinations still get it — counted in Stats().Dropped, logged at most every
// 10 s per destination, and Record returns an error wrapping ErrSpoolFull.
// Chat must not wait for space: callers log and carry on. A destination that
// is down therefore keeps every record until its spool is full and loses only
// what arrives after that.
//
// # File modes
//
// Chat content is private to the server's user whatever the umask: the spool
// and the local destination files are created 0600 in 0700 directories, and
// Open tightens what earlier versions created with wider modes.
package chatlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// RoomSource is the part of the store the pipeline reads.
type RoomSource interface {
	GetRoom(ctx context.Context, id string) (*chat.Room, error)
	GetLoggingConfiguration(ctx context.Context, id string) (*chat.LoggingConfiguration, error)
}

// Endpoint configures one destination kind's AWS-compatible service. An empty
// Endpoint selects the embedded local-files default.
type Endpoint struct {
	Endpoint        string // e.g. http://127.0.0.1:9000 or https://s3.us-west-2.amazonaws.com
	Region          string // defaults to Options.Region
	AccessKeyID     string // with SecretAccessKey: static credentials; empty: the SDK's default chain
	SecretAccessKey string
	SessionToken    string
	UsePathStyle    bool // S3 only: bucket in the path (MinIO and most S3-compatible stores)
}

// DestinationOptions configures the three destination kinds.
type DestinationOptions struct {
	S3             Endpoint
	CloudWatchLogs Endpoint
	Firehose       Endpoint
}

// Options configures a Pipeline. Zero values get the defaults noted.
type Options struct {
	Dir           string // spool directory, e.g. DATA_DIR/chatlog-spool (required)
	MaxSpoolBytes int64  // per-destination spool bound; default 1 GiB (see the package doc)
	Store         RoomSource
	Region        string // default us-east-1
	AccountID     string // default 000000000000
	Destinations  DestinationOptions
	LocalDir      string // root of the local-files default, e.g. DATA_DIR/chatlogs; required if any Endpoint is empty

	S3BatchBytes    int           // uncompressed bytes per S3 delivery round; default 5 MiB
	S3BatchInterval time.Duration // longest a record waits for an S3 batch; default 60 s
	// StreamBatchInterval is how long CloudWatch Logs and Firehose records
	// wait to be batched; default 1 s.
	StreamBatchInterval time.Duration
	RetryBase           time.Duration // first retry delay; default 500 ms
	RetryMax            time.Duration // retry delay cap; default 1 min
	Logger              *slog.Logger
}

// Destination kinds, as the model names the DestinationConfiguration members.
const (
	KindS3             = "s3"
	KindCloudWatchLogs = "cloudWatchLogs"
	KindFirehose       = "firehose"
)

var (
	// ErrSpoolFull: the record was dropped for at least one destination
	// because its spool is at MaxSpoolBytes. The record still went to the
	// other destinations.
	ErrSpoolFull = errors.New("chatlog: spool full, record dropped")
	// ErrClosed: Record after Close.
	ErrClosed = errors.New("chatlog: pipeline closed")
)

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	// Destinations is keyed by destination ("s3:<bucket>", ...).
	Destinations map[string]DestinationStats
}

// DestinationStats counts one destination's records since Open (SpoolBytes is
// the current disk footprint).
type DestinationStats struct {
	Spooled        uint64 // records durably appended
	Delivered      uint64 // records acknowledged by the destination (replays included)
	FailedAttempts uint64 // delivery attempts that failed (each is retried)
	Dropped        uint64 // records dropped because the spool was full
	SpoolBytes     int64
}

// Pipeline is the chat-logging pipeline. Its methods are safe for concurrent use.
type Pipeline struct {
	opts Options
	log  *slog.Logger

	// closeMu is held shared by Record while it appends, so Close can wait for
	// in-flight appends before stopping the spool writers.
	closeMu sync.RWMutex
	closed  bool

	destMu     sync.Mutex
	dests      map[string]*destination
	destClosed bool // no destinations may start after Close took the list

	// Routing cache: room ID → destinations, so rooms without logging cost a
	// map lookup. gen is bumped by every invalidation; a lookup that raced
	// with one does not fill the cache with what it read.
	cacheMu sync.RWMutex
	gen     uint64
	rooms   map[string][]*destination
	lcs     map[string]*chat.LoggingConfiguration

	// closeDone is Close's ctx.Done(), published before the flush channels
	// are closed.
	closeDone <-chan struct{}
}

// Open opens the spool in opts.Dir and starts delivering: records a previous
// process spooled but did not deliver are sent first.
func Open(ctx context.Context, opts Options) (*Pipeline, error) {
	if opts.Dir == "" {
		return nil, errors.New("chatlog: Options.Dir is required")
	}
	if opts.Store == nil {
		return nil, errors.New("chatlog: Options.Store is required")
	}
	d := opts.Destinations
	if opts.LocalDir == "" && (d.S3.Endpoint == "" || d.CloudWatchLogs.Endpoint == "" || d.Firehose.Endpoint == "") {
		return nil, errors.New("chatlog: Options.LocalDir is required unless every destination kind has an Endpoint")
	}
	if opts.MaxSpoolBytes <= 0 {
		opts.MaxSpoolBytes = 1 << 30
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "000000000000"
	}
	if opts.S3BatchBytes <= 0 {
		opts.S3BatchBytes = 5 << 20
	}
	if opts.S3BatchInterval <= 0 {
		opts.S3BatchInterval = time.Minute
	}
	if opts.StreamBatchInterval <= 0 {
		opts.StreamBatchInterval = time.Second
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 500 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Minute
	}
	if opts.RetryMax < opts.RetryBase {
		opts.RetryMax = opts.RetryBase
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Pipeline{
		opts: opts, log: opts.Logger,
		dests: map[string]*destination{},
		rooms: map[string][]*destination{},
		lcs:   map[string]*chat.LoggingConfiguration{},
	}
	// Directories written by earlier versions had the umask's modes.
	for _, dir := range []string{opts.Dir, opts.LocalDir} {
		if dir == "" {
			continue
		}
		if err := tighten(dir); err != nil {
			p.log.Warn("chatlog: could not make chat-log files private", "dir", dir, "err", err)
		}
	}
	if err := os.MkdirAll(opts.Dir, dirMode); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		kind, name, ok := parseDirName(de.Name())
		if !ok {
			continue
		}
		if _, err := p.destination(ctx, kind, name); err != nil {
			p.closeDestinations(ctx)
			return nil, err
		}
	}
	return p, nil
}

// dirName is the spool directory of a destination: kind~escaped-name, so log
// group names with slashes stay one directory level.
func dirName(kind, name string) string { return kind + "~" + url.PathEscape(name) }

func parseDirName(s string) (kind, name string, ok bool) {
	kind, esc, ok := strings.Cut(s, "~")
	if !ok {
		return "", "", false
	}
	switch kind {
	case KindS3, KindCloudWatchLogs, KindFirehose:
	default:
		return "", "", false
	}
	name, err := url.PathUnescape(esc)
	if err != nil || name == "" {
		return "", "", false
	}
	return kind, name, true
}

// segmentSize keeps segments small relative to the bound, because a segment
// is only deleted when wholly delivered and so counts fully against it.
func segmentSize(limit int64) int64 {
	return min(max(limit/8, 4<<10), 64<<20)
}

// destination returns the running destination kind:name, opening its spool
// and starting its deliverer on first use.
func (p *Pipeline) destination(ctx context.Context, kind, name string) (*destination, error) {
	key := kind + ":" + name
	p.destMu.Lock()
	defer p.destMu.Unlock()
	if d := p.dests[key]; d != nil {
		return d, nil
	}
	if p.destClosed {
		return nil, ErrClosed
	}
	snk, err := p.newSink(ctx, kind, name)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(filepath.Join(p.opts.Dir, dirName(kind, name)), p.opts.MaxSpoolBytes, segmentSize(p.opts.MaxSpoolBytes), p.log)
	if err != nil {
		return nil, fmt.Errorf("chatlog: open spool for %s: %w", key, err)
	}
	d := &destination{key: key, sp: sp, sink: snk, p: p, log: p.log.With("destination", key),
		flush: make(chan struct{}), done: make(chan struct{})}
	p.dests[key] = d
	go d.run()
	return d, nil
}

func (p *Pipeline) newSink(ctx context.Context, kind, name string) (sink, error) {
	d := p.opts.Destinations
	switch kind {
	case KindS3:
		if d.S3.Endpoint == "" {
			return &localS3Sink{root: filepath.Join(p.opts.LocalDir, "s3"), bucket: name, region: p.opts.Region, account: p.opts.AccountID,
				batchBytes: p.opts.S3BatchBytes, linger: p.opts.S3BatchInterval}, nil
		}
		return newS3Sink(ctx, d.S3, p.opts, name)
	case KindCloudWatchLogs:
		if d.CloudWatchLogs.Endpoint == "" {
			return &localCWLSink{root: filepath.Join(p.opts.LocalDir, "cloudwatchlogs"), group: name, linger: p.opts.StreamBatchInterval}, nil
		}
		return newCWLSink(ctx, d.CloudWatchLogs, p.opts, name, p.log)
	case KindFirehose:
		if d.Firehose.Endpoint == "" {
			return &localFirehoseSink{root: filepath.Join(p.opts.LocalDir, "firehose"), stream: name, linger: p.opts.StreamBatchInterval}, nil
		}
		return newFirehoseSink(ctx, d.Firehose, p.opts, name)
	}
	return nil, fmt.Errorf("chatlog: unknown destination kind %q", kind)
}

// Record appends one delivered MESSAGE or EVENT frame of roomID. payload is
// the exact frame JSON clients received; at is when the server received it.
//
// A nil return means the record is fsynced in the spool of every destination
// of every ACTIVE logging configuration the room references and will be
// delivered at least once. Rooms without logging configurations return
// without I/O after the first lookup. An error wrapping ErrSpoolFull means the
// record was dropped for some destination (counted and logged); callers must
// not fail the chat message because of any error from Record.
func (p *Pipeline) Record(ctx context.Context, roomID, typ string, payload []byte, at time.Time) error {
	dests, err := p.route(ctx, roomID)
	if err != nil || len(dests) == 0 {
		return err
	}
	if typ != "MESSAGE" && typ != "EVENT" {
		return fmt.Errorf("chatlog: record type %q is neither MESSAGE nor EVENT", typ)
	}
	rec, err := buildRecord(typ, payload, at)
	if err != nil {
		return err
	}
	if len(rec)+bodyFixedLen+len(roomID) > maxEntryBody || len(roomID) > 0xffff {
		return fmt.Errorf("chatlog: record of %d bytes is too large", len(rec))
	}
	buf := encodeBody(at, roomID, rec)

	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	var (
		reqs  [4]*appendReq
		pend  = reqs[:0]
		owner [4]*destination
		own   = owner[:0]
		full  error
	)
	for _, d := range dests {
		req, err := d.sp.enqueue(ctx, buf)
		if err != nil && !errors.Is(err, errSpoolFull) {
			return err
		}
		if err != nil {
			d.dropped.Add(1)
			d.logDrop()
			full = fmt.Errorf("%w for %s", ErrSpoolFull, d.key)
			continue
		}
		pend = append(pend, req)
		own = append(own, d)
	}
	var firstErr error
	for i, req := range pend {
		select {
		case err := <-req.done:
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("chatlog: spool %s: %w", own[i].key, err)
				}
				continue
			}
			own[i].spooled.Add(1)
		case <-ctx.Done():
			// The append may still complete; the caller just stops waiting.
			return ctx.Err()
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return full
}

// buildRecord renders the spec §8 record around the frame. The payload is
// embedded verbatim (compacted only if it spans lines, which would break
// newline-delimited output).
func buildRecord(typ string, payload []byte, at time.Time) ([]byte, error) {
	if !json.Valid(payload) {
		return nil, errors.New("chatlog: payload is not valid JSON")
	}
	if bytes.IndexByte(payload, '\n') >= 0 || bytes.IndexByte(payload, '\r') >= 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, payload); err != nil {
			return nil, err
		}
		payload = c.Bytes()
	}
	b := make([]byte, 0, len(payload)+96)
	b = append(b, `{"event_timestamp":"`...)
	b = at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","version":"1.0","payload":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return b, nil
}

// route returns the destinations of roomID's ACTIVE logging configurations.
func (p *Pipeline) route(ctx context.Context, roomID string) ([]*destination, error) {
	p.cacheMu.RLock()
	dests, ok := p.rooms[roomID]
	gen := p.gen
	p.cacheMu.RUnlock()
	if ok {
		return dests, nil
	}
	room, err := p.opts.Store.GetRoom(ctx, roomID)
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeResourceNotFound {
			return nil, fmt.Errorf("chatlog: get room %s: %w", roomID, err)
		}
		room = &chat.Room{ID: roomID} // deleted: nothing to log
	}
	seen := map[string]bool{}
	dests = nil
	for _, id := range room.LoggingConfigurationIDs {
		lc, err := p.loggingConfiguration(ctx, id, gen)
		if err != nil {
			return nil, err
		}
		if lc == nil || lc.State != chat.StateActive {
			continue
		}
		kind, name := destinationOf(lc.Destination)
		if kind == "" || seen[kind+":"+name] {
			continue
		}
		seen[kind+":"+name] = true
		d, err := p.destination(ctx, kind, name)
		if err != nil {
			return nil, err
		}
		dests = append(dests, d)
	}
	p.cacheMu.Lock()
	if p.gen == gen {
		p.rooms[roomID] = dests
	}
	p.cacheMu.Unlock()
	return dests, nil
}

func (p *Pipeline) loggingConfiguration(ctx context.Context, id string, gen uint64) (*chat.LoggingConfiguration, error) {
	p.cacheMu.RLock()
	lc, ok := p.lcs[id]
	p.cacheMu.RUnlock()
	if ok {
		return lc, nil
	}
	lc, err := p.opts.Store.GetLoggingConfiguration(ctx, id)
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeResourceNotFound {
			return nil, fmt.Errorf("chatlog: get logging configuration %s: %w", id, err)
		}
		lc = nil
	}
	p.cacheMu.Lock()
	if p.gen == gen {
		p.lcs[id] = lc
	}
	p.cacheMu.Unlock()
	return lc, nil
}

func destinationOf(d chat.Destination) (kind, name string) {
	switch {
	case d.S3BucketName != "":
		return KindS3, d.S3BucketName
	case d.CloudWatchLogGroupName != "":
		return KindCloudWatchLogs, d.CloudWatchLogGroupName
	case d.FirehoseDeliveryStreamName != "":
		return KindFirehose, d.FirehoseDeliveryStreamName
	}
	return "", ""
}

// RoomChanged drops the cached routing of roomID; call it after the room is
// created, updated (its logging configuration IDs) or deleted.
func (p *Pipeline) RoomChanged(roomID string) {
	p.cacheMu.Lock()
	p.gen++
	delete(p.rooms, roomID)
	p.cacheMu.Unlock()
}

// LoggingConfigurationChanged drops the cached configuration and every room's
// routing (which rooms use it is not tracked; this is rare). Call it after a
// configuration is created, updated, changes state or is deleted.
func (p *Pipeline) LoggingConfigurationChanged(id string) {
	p.cacheMu.Lock()
	p.gen++
	delete(p.lcs, id)
	clear(p.rooms)
	p.cacheMu.Unlock()
}

// Stats returns the per-destination counters.
func (p *Pipeline) Stats() Stats {
	p.destMu.Lock()
	defer p.destMu.Unlock()
	s := Stats{Destinations: make(map[string]DestinationStats, len(p.dests))}
	for k, d := range p.dests {
		s.Destinations[k] = DestinationStats{
			Spooled:        d.spooled.Load(),
			Delivered:      d.delivered.Load(),
			FailedAttempts: d.failed.Load(),
			Dropped:        d.dropped.Load(),
			SpoolBytes:     d.sp.bytes.Load(),
		}
	}
	return s
}

// Close stops accepting records, makes one delivery attempt for what is
// spooled (bounded by ctx), and stops. Whatever was not delivered stays in the
// spool for the next Open.
func (p *Pipeline) Close(ctx context.Context) error {
	p.closeMu.Lock()
	if p.closed {
		p.closeMu.Unlock()
		return nil
	}
	p.closed = true
	p.closeMu.Unlock()
	return p.closeDestinations(ctx)
}

func (p *Pipeline) closeDestinations(ctx context.Context) error {
	p.destMu.Lock()
	p.destClosed = true
	ds := make([]*destination, 0, len(p.dests))
	for _, d := range p.dests {
		ds = append(ds, d)
	}
	p.destMu.Unlock()
	p.closeDone = ctx.Done()
	var err error
	for _, d := range ds {
		close(d.flush)
	}
	for _, d := range ds {
		select {
		case <-d.done:
		case <-ctx.Done():
			err = ctx.Err()
			<-d.done // the deliverer's own context is derived from ctx
		}
		d.sp.close()
	}
	return err
}

// destination is one destination's spool and deliverer.
type destination struct {
	key  string
	sp   *spool
	sink sink
	p    *Pipeline
	log  *slog.Logger

	spooled, delivered, failed, dropped atomic.Uint64
	lastDropLog                         atomic.Int64

	flush chan struct{} // closed by Close: deliver what is there, once, then stop
	done  chan struct{}
}

func (d *destination) logDrop() {
	now := time.Now().UnixNano()
	last := d.lastDropLog.Load()
	if now-last < int64(10*time.Second) || !d.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	d.log.Warn("chatlog: spool full, dropping records for this destination",
		"dropped_total", d.dropped.Load(), "max_spool_bytes", d.p.opts.MaxSpoolBytes)
}

// sink delivers batches to one destination.
type sink interface {
	// batching returns the batch bounds: how long a record may wait to be
	// batched, the most entries and bytes (as measured by cost) per round.
	batching() (linger time.Duration, maxEntries, maxBytes int)
	cost(e *entry) int
	// deliver sends batch; it returns the entries that are still not
	// delivered (nil when all are) and why. Entries it returns are retried.
	deliver(ctx context.Context, batch []entry) ([]entry, error)
}

// run is the deliverer loop.
func (d *destination) run() {
	defer close(d.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Close's context bounds the final flush and cancels a delivery in
		// flight; before Close, deliveries only end with the process.
		select {
		case <-d.flush:
		case <-ctx.Done():
			return
		}
		select {
		case <-d.p.closeDone:
		case <-ctx.Done():
		}
		cancel()
	}()
	linger, maxEntries, maxBytes := d.sink.batching()
	// Deliver without waiting for the batch interval once a batch is full,
	// or the spool a quarter full: a spool bound below the S3 batch size
	// must not turn batching into drops.
	threshold := min(uint64(maxBytes), uint64(d.sp.max/4))
	closing := false
	for {
		if !closing {
			select {
			case <-d.flush:
				closing = true
			default:
			}
		}
		pending, oldest := d.sp.pending()
		if pending == 0 {
			if closing {
				return
			}
			select {
			case <-d.sp.notify:
			case <-d.flush:
				closing = true
			}
			continue
		}
		if !closing && pending < threshold {
			if wait := time.Until(oldest.Add(linger)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-d.sp.notify:
				case <-d.flush:
					closing = true
				}
				t.Stop()
				continue
			}
		}
		if !d.deliverRound(ctx, closing, maxEntries, maxBytes) {
			return
		}
	}
}

// deliverRound reads one batch from the cursor and delivers it, retrying
// with backoff until it is acknowledged. It returns false when the
// deliverer should stop (closing and the attempt failed, or cancelled).
func (d *destination) deliverRound(ctx context.Context, closing bool, maxEntries, maxBytes int) bool {
	d.sp.mu.Lock()
	from := d.sp.ack
	d.sp.mu.Unlock()
	batch, next, err := d.sp.read(ctx, from, maxEntries, maxBytes, d.sink.cost)
	if err != nil {
		d.log.Error("chatlog: reading spool", "err", err)
		return !closing && d.sleep(ctx, 0)
	}
	n := len(batch)
	remaining := batch
	for attempt := 0; len(remaining) > 0; attempt++ {
		remaining, err = d.sink.deliver(ctx, remaining)
		if len(remaining) == 0 {
			break
		}
		d.failed.Add(1)
		if attempt&(attempt+1) == 0 {
			// Log attempts 1, 2, 4, 8, ...: an hour-long outage must not
			// flood the log.
			d.log.Warn("chatlog: delivery failed; will retry", "attempt", attempt+1, "undelivered", len(remaining), "err", err)
		}
		if closing || ctx.Err() != nil {
			return false
		}
		if !d.sleep(ctx, attempt) {
			return false
		}
		select {
		case <-d.flush:
			closing = true
		default:
		}
	}
	if err := d.sp.acknowledge(next); err != nil {
		// The batch was delivered but the cursor did not move: it will be
		// delivered again (a duplicate, never a loss).
		d.log.Error("chatlog: persisting delivery cursor", "err", err)
	}
	d.delivered.Add(uint64(n))
	return true
}

// sleep waits the backoff for attempt: exponential from RetryBase, capped at
// RetryMax, with "equal jitter" (half fixed, half random) so destinations
// that failed together do not retry in lockstep. It returns false if the
// deliverer must stop.
func (d *destination) sleep(ctx context.Context, attempt int) bool {
	o := d.p.opts
	wait := o.RetryBase << min(attempt, 30)
	if wait > o.RetryMax || wait <= 0 {
		wait = o.RetryMax
	}
	wait = wait/2 + rand.N(wait/2+1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-d.flush:
		// Closing: make the final attempt now rather than after the backoff.
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}
