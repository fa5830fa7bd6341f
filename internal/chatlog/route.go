package chatlog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// Routing decides which destinations a room's records go to: those of the
// ACTIVE logging configurations the room references.
//
// The pipeline caches, per room, the destinations, and per configuration
// what the store said, so a busy room costs a map lookup per record. What
// keeps the cache true:
//
//   - RoomChanged and LoggingConfigurationChanged, which the control plane
//     calls after every write (each state change of a configuration
//     included), make the next record of the affected rooms read the store
//     again, synchronously: the API call that caused the change expects the
//     next record to follow it;
//   - in a cluster, a node with connections in a room also hears of a
//     change made through another node: the messaging gateway calls
//     RoomChanged for every room update or deletion the broker brings, and
//     the control plane announces a configuration's settled state as an
//     update of every room that references it (api: settle);
//   - every entry is read again after RouteTTL, which bounds how long a
//     change made through another node takes to reach a node that was not
//     told: one without connections in the room (a SendEvent through its
//     API), or one that missed the broker's message. Nothing signalled a
//     change, so a record that finds its room's routing past RouteTTL is
//     not held up by the read: it goes to the known routing while one read
//     per room (single-flight) refreshes it in the background, and the
//     records after that read use what it found. A frozen database thus
//     costs chat nothing on the TTL path;
//   - when the store cannot be read, a room with known routes keeps them (a
//     database blip must not stop chat) and only a room with none known has
//     its records refused (after waiting at most RouteLookupTimeout). While
//     reads fail, records of known rooms do not wait for the store, even
//     after an invalidation: one read per storeRetry, foreground or
//     background, tests whether it is back;
//   - a configuration this node saw ACTIVE and now reads as UPDATING keeps
//     its last ACTIVE destination until the update settles, so changing a
//     destination leaves no gap in the log.
//
// Entries not read for routeForget are dropped, so deleted rooms do not
// accumulate.

const (
	// storeRetry spaces out store reads while they fail.
	storeRetry = time.Second
	// routeForget: an entry not refreshed for this long belongs to a quiet
	// or deleted room and is dropped (a sweep runs at most every minute).
	routeForget = 10 * time.Minute
)

// routeEntry is the cached routing of one room.
type routeEntry struct {
	dests []*destination
	// read is when the store read began, or when the oldest cached
	// configuration it used was read, if earlier: the routing expires when
	// any part of it does, so RouteTTL bounds the age of all of it.
	read    time.Time
	gen     uint64 // Pipeline.gen when the store read began
	invalid bool   // RoomChanged since
}

// lcEntry is the cached state of one logging configuration.
type lcEntry struct {
	lc      *chat.LoggingConfiguration // never nil
	read    time.Time
	invalid bool // LoggingConfigurationChanged since
}

// storeError marks a failure to read the store, as opposed to a failure to
// open a destination: only the former is answered with stale routes.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// storeHealth remembers that store reads fail, so records of rooms with
// known routes stop waiting for them until storeRetry has passed; then one
// caller at a time tries again.
type storeHealth struct {
	failing atomic.Bool
	retryAt atomic.Int64 // unix ns
	probing atomic.Bool
}

func (h *storeHealth) try(now time.Time) bool {
	if !h.failing.Load() {
		return true
	}
	if now.UnixNano() < h.retryAt.Load() {
		return false
	}
	return h.probing.CompareAndSwap(false, true)
}

func (h *storeHealth) result(now time.Time, ok bool) {
	if ok {
		h.failing.Store(false)
	} else {
		h.retryAt.Store(now.Add(storeRetry).UnixNano())
		h.failing.Store(true)
	}
	h.probing.Store(false)
}

// route returns the destinations of roomID's ACTIVE logging configurations.
// It fails only when they cannot be determined: the store cannot be read and
// nothing is known about the room, or a destination cannot be opened.
func (p *Pipeline) route(ctx context.Context, roomID string) ([]*destination, error) {
	now := time.Now()
	p.cacheMu.RLock()
	e, known := p.rooms[roomID]
	gen, lcGen := p.gen, p.lcGen
	p.cacheMu.RUnlock()
	current := known && !e.invalid && e.gen >= lcGen // nothing signalled a change
	if current && now.Sub(e.read) < p.opts.RouteTTL {
		return e.dests, nil
	}
	if current {
		// Only the TTL ran out: use the known routing, refresh it aside.
		if p.storeHealth.failing.Load() {
			p.routeFailure(roomID, true, errStoreFailing)
		}
		p.refresh(roomID, gen, now)
		return e.dests, nil
	}
	if known && !p.storeHealth.try(now) {
		p.routeFailure(roomID, true, errStoreFailing)
		return e.dests, nil
	}
	// A room marked changed re-reads its configurations too: a change
	// announced by another node may be one of theirs.
	dests, err := p.lookup(ctx, roomID, gen, now, known && e.invalid)
	var se *storeError
	if errors.As(err, &se) {
		p.storeHealth.result(now, false)
		p.routeFailure(roomID, known, err)
		if known {
			return e.dests, nil
		}
		return nil, err
	}
	p.storeHealth.result(now, true)
	if err != nil {
		p.routeFailure(roomID, false, err)
		return nil, err
	}
	return dests, nil
}

// errStoreFailing is why a record used its room's last known routing
// without a store read of its own: the last reads failed.
var errStoreFailing = errors.New("store reads failing; using the last known routing until one succeeds")

// refresh reads roomID's routing again in the background, unless a refresh
// of the room is already running (one read per room, however many records
// find the routing expired), the store is failing and not due for another
// try (storeHealth), or the pipeline is closed. What the read finds is
// cached for the next records, unless an invalidation raced with it (gen).
func (p *Pipeline) refresh(roomID string, gen uint64, now time.Time) {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return
	}
	p.refreshMu.Lock()
	if _, busy := p.refreshing[roomID]; busy || !p.storeHealth.try(now) {
		p.refreshMu.Unlock()
		return
	}
	p.refreshing[roomID] = struct{}{}
	p.refreshMu.Unlock()
	p.refreshes.Add(1)
	go func() {
		defer p.refreshes.Done()
		defer func() {
			p.refreshMu.Lock()
			delete(p.refreshing, roomID)
			p.refreshMu.Unlock()
		}()
		start := time.Now()
		_, err := p.lookup(p.refreshCtx, roomID, gen, start, false)
		if p.refreshCtx.Err() != nil {
			return // Close cut it short: says nothing about the store
		}
		// A destination that cannot be opened is no store failure: the
		// records keep the known routing and the next one tries again.
		var se *storeError
		p.storeHealth.result(start, !errors.As(err, &se))
		if err != nil {
			p.refreshFailures.Add(1)
			if p.staleLog.Allow(time.Now(), logEvery) {
				p.log.Warn("chatlog: cannot refresh a room's logging destinations; its records use the last known ones",
					"room", roomID, "err", err, "refresh_failures_total", p.refreshFailures.Load())
			}
		}
	}()
}

// routeFailure counts and logs (at most every 10 s) a record whose routes
// could not be read; stale says whether the room's last known routes were
// used instead.
func (p *Pipeline) routeFailure(roomID string, stale bool, err error) {
	msg, every := "chatlog: cannot determine a room's logging destinations; record refused", &p.refusedLog
	if stale {
		p.routesStale.Add(1)
		msg, every = "chatlog: cannot read a room's logging destinations; using the last known ones", &p.staleLog
	} else {
		p.routesRefused.Add(1)
	}
	if !every.Allow(time.Now(), logEvery) {
		return
	}
	p.log.Warn(msg, "room", roomID, "err", err,
		"stale_total", p.routesStale.Load(), "refused_total", p.routesRefused.Load())
}

// lookup reads roomID's routing from the store (configurations from the
// cache when fresh, unless force) and caches it unless an invalidation raced
// with it.
func (p *Pipeline) lookup(ctx context.Context, roomID string, gen uint64, now time.Time, force bool) ([]*destination, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.RouteLookupTimeout)
	defer cancel()
	room, err := p.opts.Store.GetRoom(ctx, roomID)
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeResourceNotFound {
			return nil, &storeError{fmt.Errorf("get room %s: %w", roomID, err)}
		}
		room = &chat.Room{ID: roomID} // deleted: nothing to log
	}
	seen := map[string]*destination{}
	var dests []*destination
	read := now
	for _, id := range room.LoggingConfigurationIDs {
		lc, lcRead, err := p.loggingConfiguration(ctx, id, gen, now, force)
		if err != nil {
			return nil, err
		}
		if lcRead.Before(read) {
			read = lcRead
		}
		if lc == nil || lc.State != chat.StateActive {
			continue
		}
		kind, name := destinationOf(lc.Destination)
		if kind == "" {
			continue
		}
		d := seen[kind+":"+name]
		if d == nil {
			if d, err = p.destination(ctx, kind, name); err != nil {
				return nil, err
			}
			seen[kind+":"+name] = d
			dests = append(dests, d)
		}
		d.configs.add(p.configErrors(lc.ID))
	}
	p.cacheMu.Lock()
	if p.gen == gen {
		p.rooms[roomID] = routeEntry{dests: dests, read: read, gen: gen}
	}
	p.sweepLocked(now)
	p.cacheMu.Unlock()
	return dests, nil
}

// loggingConfiguration returns configuration id as the store has it (nil if
// it does not exist), from the cache when fresh and not force, and when
// that was read from the store.
func (p *Pipeline) loggingConfiguration(ctx context.Context, id string, gen uint64, now time.Time, force bool) (*chat.LoggingConfiguration, time.Time, error) {
	p.cacheMu.RLock()
	e, ok := p.lcs[id]
	p.cacheMu.RUnlock()
	if ok && !force && !e.invalid && now.Sub(e.read) < p.opts.RouteTTL {
		return e.lc, e.read, nil
	}
	lc, err := p.opts.Store.GetLoggingConfiguration(ctx, id)
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeResourceNotFound {
			return nil, time.Time{}, &storeError{fmt.Errorf("get logging configuration %s: %w", id, err)}
		}
		p.cacheMu.Lock()
		if p.gen == gen {
			delete(p.lcs, id)
		}
		p.cacheMu.Unlock()
		return nil, now, nil
	}
	if lc.State == chat.StateUpdating && ok && e.lc.State == chat.StateActive {
		// The new destination is being checked: keep recording to the one
		// last seen ACTIVE until the update settles.
		lc = e.lc
	}
	p.cacheMu.Lock()
	if p.gen == gen {
		p.lcs[id] = lcEntry{lc: lc, read: now}
	}
	p.cacheMu.Unlock()
	return lc, now, nil
}

// sweepLocked drops entries not refreshed for routeForget, at most once a
// minute. p.cacheMu must be held for writing.
func (p *Pipeline) sweepLocked(now time.Time) {
	if now.Before(p.nextSweep) {
		return
	}
	p.nextSweep = now.Add(time.Minute)
	for id, e := range p.rooms {
		if now.Sub(e.read) > routeForget {
			delete(p.rooms, id)
		}
	}
	for id, e := range p.lcs {
		if now.Sub(e.read) > routeForget {
			delete(p.lcs, id)
		}
	}
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

// RoomChanged makes the next record of roomID read its routing from the
// store, the configurations it references included; call it after the room
// is created, updated or deleted, here or (told by the broker) on another
// node, and when another node announces a change of a configuration the
// room references. The old routing is kept only as the fallback for when
// the store cannot be read.
func (p *Pipeline) RoomChanged(roomID string) {
	p.cacheMu.Lock()
	p.gen++
	if e, ok := p.rooms[roomID]; ok {
		e.invalid = true
		p.rooms[roomID] = e
	}
	p.cacheMu.Unlock()
}

// LoggingConfigurationChanged makes the next record of every room read its
// routing again (which rooms use a configuration is not tracked; this is
// rare). Call it after every write of a configuration: creation, update,
// each change of state (CREATING/UPDATING → ACTIVE or failed) and deletion.
func (p *Pipeline) LoggingConfigurationChanged(id string) {
	p.cacheMu.Lock()
	p.gen++
	p.lcGen = p.gen
	if e, ok := p.lcs[id]; ok {
		e.invalid = true
		p.lcs[id] = e
	}
	p.cacheMu.Unlock()
}

// logEvery is how often one kind of chat-log failure is logged; every
// occurrence is counted in the metrics.
const logEvery = 10 * time.Second
