// Package chatlog records the MESSAGE and EVENT frames of rooms that reference
// ACTIVE logging configurations, durably, to S3, CloudWatch Logs and Firehose
// destinations (spec/messaging.md §8).
//
// # Flow
//
// Record encodes one record and appends it to an on-disk spool per
// destination; it returns only after the spool append is fsynced, so a nil
// return means the record survives kill -9; an error wraps ErrNotRecorded and
// the caller must then not deliver the frame (see Record). Concurrent Record
// calls share one fsync (group commit). A deliverer goroutine per destination reads the spool,
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
// destinations still get it — counted in Stats().Dropped and logged at most
// every 10 s per destination, and Record still returns nil: chat must not
// wait for space. A destination that is down therefore keeps every record
// until its spool is full and loses only what arrives after that.
//
// # Spool failures
//
// A spool write that fails (an I/O error, a segment that cannot be created)
// is cut off the segment, so the spool on disk holds only whole records, and
// the records of that write are counted in Stats().FailedToSpool, logged at
// most every 10 s per destination, and refused (Record returns an error). The
// next write reopens the segment and tries again: a transient error costs
// the records written while it lasts, never the destination.
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
	"github.com/ivschatd/ivschatd/internal/throttle"
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

	// RouteTTL is how long a room's logging destinations are used before
	// they are read from the store again: the bound for a change made
	// through another node of a cluster to reach this one when nothing told
	// it (see RoomChanged); default 10 s.
	RouteTTL time.Duration
	// RouteLookupTimeout bounds one read of a room's routing from the store;
	// past it the room's last known routing is used; default 2 s.
	RouteLookupTimeout time.Duration

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
	// ErrNotRecorded is wrapped by every error Record returns: the frame
	// could not be durably recorded for at least one destination it should
	// go to, so it must not be delivered.
	ErrNotRecorded = errors.New("chatlog: frame not recorded")
	// ErrClosed: Record after Close (wrapped together with ErrNotRecorded).
	ErrClosed = errors.New("chatlog: pipeline closed")
)

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	// Destinations is keyed by destination ("s3:<bucket>", ...).
	Destinations map[string]DestinationStats
	// RoutesStale counts records routed by their room's last known
	// destinations because the store could not be read.
	RoutesStale uint64
	// RoutesRefused counts records refused because their room's
	// destinations could not be determined (the store could not be read and
	// none were known, or a destination's spool could not be opened).
	RoutesRefused uint64
	// RouteRefreshFailures counts background re-reads of a room's routing
	// past RouteTTL that failed; the room's records kept its last known
	// routing meanwhile.
	RouteRefreshFailures uint64
	// Configurations counts delivery failures by logging configuration
	// ARN, for every configuration whose records went to a destination.
	Configurations map[string]ConfigurationErrors
}

// DestinationStats counts one destination's records since Open (SpoolBytes is
// the current disk footprint).
type DestinationStats struct {
	Spooled        uint64 // records durably appended
	Delivered      uint64 // records acknowledged by the destination (replays included)
	FailedAttempts uint64 // delivery attempts that failed (each is retried)
	Dropped        uint64 // records dropped because the spool was full (Record returned nil)
	// FailedToSpool counts records that could not be written to the spool
	// (an I/O error, or the caller's context ended before the write was
	// queued); Record returned an error for each.
	FailedToSpool uint64
	SpoolBytes    int64
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

	// Routing cache (route.go): room ID → destinations, so rooms without
	// logging cost a map lookup. gen is bumped by every invalidation; a
	// lookup that raced with one does not fill the cache with what it read.
	// lcGen is the gen of the last configuration change: room entries read
	// before it are stale.
	cacheMu sync.RWMutex
	gen     uint64
	lcGen   uint64
	rooms   map[string]routeEntry
	lcs     map[string]lcEntry
	// lcErr holds the failure counters of each logging configuration (by
	// ARN) whose records were routed here.
	lcErrMu   sync.Mutex
	lcErr     map[string]*lcErrors
	nextSweep time.Time

	storeHealth                storeHealth
	routesStale, routesRefused atomic.Uint64
	refreshFailures            atomic.Uint64

	// Background refreshes of expired routing (route.go): refreshing holds
	// the rooms with one running; Close cancels refreshCtx and waits for
	// them.
	refreshMu            sync.Mutex
	refreshing           map[string]struct{}
	refreshes            sync.WaitGroup
	refreshCtx           context.Context
	refreshCancel        context.CancelFunc
	staleLog, refusedLog throttle.Every

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
	if opts.RouteTTL <= 0 {
		opts.RouteTTL = 10 * time.Second
	}
	if opts.RouteLookupTimeout <= 0 {
		opts.RouteLookupTimeout = 2 * time.Second
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
		rooms: map[string]routeEntry{},
		lcs:   map[string]lcEntry{},
		lcErr: map[string]*lcErrors{},

		refreshing: map[string]struct{}{},
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
	p.refreshCtx, p.refreshCancel = context.WithCancel(context.Background())
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
	log := p.log.With("destination", key)
	sp, err := openSpool(filepath.Join(p.opts.Dir, dirName(kind, name)), p.opts.MaxSpoolBytes, segmentSize(p.opts.MaxSpoolBytes), log)
	if err != nil {
		return nil, fmt.Errorf("chatlog: open spool for %s: %w", key, err)
	}
	d := &destination{key: key, sp: sp, sink: snk, p: p, log: log,
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

// Record durably records one MESSAGE or EVENT frame of roomID before it is
// delivered. payload is the exact frame JSON clients will receive; at is when
// the server received it.
//
// The contract with the caller:
//
//   - nil: the record is fsynced in the spool of every destination of every
//     ACTIVE logging configuration the room references (it survives kill -9
//     and will be delivered at least once), or the room logs nothing, or a
//     destination's spool was full (MaxSpoolBytes): the record is dropped
//     for that destination only, counted in Stats and logged, and chat goes
//     on — the bound is what keeps a destination that is down from filling
//     the disk.
//   - an error, always wrapping ErrNotRecorded: the record could not be
//     kept for at least one destination because of a failure — a spool
//     write failed (counted in FailedToSpool), the room's destinations
//     could not be determined (the store failed and none were known), ctx
//     ended first, the pipeline is closed (also wraps ErrClosed), or the
//     frame is not a valid record. The caller must not deliver the frame
//     (the gateway refuses it with ERROR 500). Destinations whose append
//     succeeded still hold the record: a refused frame may appear in some
//     logs, never a delivered frame missing from one.
//
// Rooms without logging configurations return without I/O (the routing is
// cached, see route.go).
func (p *Pipeline) Record(ctx context.Context, roomID, typ string, payload []byte, at time.Time) error {
	if err := p.record(ctx, roomID, typ, payload, at); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return nil
}

func (p *Pipeline) record(ctx context.Context, roomID, typ string, payload []byte, at time.Time) error {
	dests, err := p.route(ctx, roomID)
	if err != nil || len(dests) == 0 {
		return err
	}
	if typ != "MESSAGE" && typ != "EVENT" {
		return fmt.Errorf("record type %q is neither MESSAGE nor EVENT", typ)
	}
	rec, err := buildRecord(typ, payload, at)
	if err != nil {
		return err
	}
	if len(rec)+bodyFixedLen+len(roomID) > maxEntryBody || len(roomID) > 0xffff {
		return fmt.Errorf("record of %d bytes is too large", len(rec))
	}
	buf := encodeBody(at, roomID, rec)

	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	var (
		reqs     [4]*appendReq
		pend     = reqs[:0]
		owner    [4]*destination
		own      = owner[:0]
		firstErr error
	)
	for _, d := range dests {
		req, err := d.sp.enqueue(ctx, buf)
		switch {
		case errors.Is(err, errSpoolFull):
			d.dropped.Add(1)
			d.logDrop()
		case err != nil:
			d.sp.failed(1, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("spool %s: %w", d.key, err)
			}
		default:
			pend = append(pend, req)
			own = append(own, d)
		}
	}
	for i, req := range pend {
		select {
		case err := <-req.done:
			// The spool's writer counted and logged the outcome.
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("spool %s: %w", own[i].key, err)
			}
		case <-ctx.Done():
			// The append may still complete; the caller just stops waiting.
			return ctx.Err()
		}
	}
	return firstErr
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

// Stats returns the per-destination counters.
func (p *Pipeline) Stats() Stats {
	p.destMu.Lock()
	defer p.destMu.Unlock()
	s := Stats{Destinations: make(map[string]DestinationStats, len(p.dests))}
	for k, d := range p.dests {
		s.Destinations[k] = DestinationStats{
			Spooled:        d.sp.spooled.Load(),
			Delivered:      d.delivered.Load(),
			FailedAttempts: d.failed.Load(),
			Dropped:        d.dropped.Load(),
			FailedToSpool:  d.sp.failedCount.Load(),
			SpoolBytes:     d.sp.bytes.Load(),
		}
	}
	s.RoutesStale = p.routesStale.Load()
	s.RoutesRefused = p.routesRefused.Load()
	s.RouteRefreshFailures = p.refreshFailures.Load()
	s.Configurations = p.configurationStats()
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
	// No refresh starts once closed is set; a running one ends within
	// RouteLookupTimeout, at once when cancelled.
	p.refreshCancel()
	p.refreshes.Wait()
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

	delivered, failed, dropped atomic.Uint64
	dropLog                    throttle.Every
	// configs are the logging configurations routed here.
	configs configurations

	flush chan struct{} // closed by Close: deliver what is there, once, then stop
	done  chan struct{}
}

func (d *destination) logDrop() {
	if !d.dropLog.Allow(time.Now(), logEvery) {
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
		d.configs.failed(err)
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
