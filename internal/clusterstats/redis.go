package clusterstats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis gathers by scatter-gather over Redis. The asking node PUBLISHes a
// request on <prefix>:stats:requests, which every node of the cluster is
// subscribed to; PUBLISH answers how many subscribers received it. Each
// node RPUSHes its answer to the request's reply list
// <prefix>:stats:reply:<id> (with a short EXPIRE, so a list nobody pops
// does not stay), and the asker BLPOPs until it has that many answers or
// its deadline passes; the nodes that did not answer are reported as
// missing, never waited for longer. The asker's own figures are taken
// directly; its own subscription answers with an empty acknowledgement,
// so that the count PUBLISH returns is matched whether or not this node's
// subscription is up.
//
// Nothing is stored in Redis between requests: a node's figures are as
// fresh as the question.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	node    string
	src     Source
	timeout time.Duration
	log     *slog.Logger

	ps   *redis.PubSub
	sem  chan struct{} // bounds concurrent answers
	stop context.CancelFunc
	done chan struct{}
	once sync.Once

	failures failureCounts
}

// failureCounts counts what gathering could not do, by reason (Stats): each
// is also logged at Warn, except missing nodes, which every answer reports
// (NodesMissing) and which a slow node could otherwise flood the log with.
type failureCounts struct {
	redis     atomic.Uint64 // this node's question failed: its own figures only
	missing   atomic.Uint64 // asked nodes that did not answer in time
	answer    atomic.Uint64 // this node's answer could not be posted
	busy      atomic.Uint64 // questions dropped: maxAnswering already in progress
	malformed atomic.Uint64 // malformed questions or answers ignored
}

// Stats is what the gatherer counted since it started.
type Stats struct {
	// Failures by reason: redis (a question of this node could not be
	// asked or its answers collected, so the answer held this node's
	// figures only), missing (nodes asked that did not answer before the
	// deadline), answer (this node could not post its answer), busy (this
	// node dropped a question because it was already answering
	// maxAnswering), malformed (a question or answer that did not decode).
	Failures map[string]uint64
}

// Stats reads the counters.
func (r *Redis) Stats() Stats {
	f := &r.failures
	return Stats{Failures: map[string]uint64{
		"redis":     f.redis.Load(),
		"missing":   f.missing.Load(),
		"answer":    f.answer.Load(),
		"busy":      f.busy.Load(),
		"malformed": f.malformed.Load(),
	}}
}

// RedisOptions configures NewRedis.
type RedisOptions struct {
	Prefix string // the cluster's key prefix (--redis-prefix)
	Node   string // this node's ID
	Source Source
	// Timeout is how long an asker waits for the other nodes (default 1 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Limits of the wire: a request is small; an answer can list a room's
// connections on a node (limit+1 of them) or its distinct users.
const (
	maxRequestBytes = 4 << 10
	maxReplyBytes   = 64 << 20
	replyTTL        = 10 * time.Second
	maxAnswering    = 8
)

// NewRedis subscribes to the request channel and starts answering.
func NewRedis(ctx context.Context, client redis.UniversalClient, o RedisOptions) (*Redis, error) {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Redis{
		client: client, prefix: o.Prefix, node: o.Node, src: o.Source, timeout: o.Timeout, log: o.Logger,
		sem: make(chan struct{}, maxAnswering), done: make(chan struct{}),
	}
	r.ps = client.Subscribe(ctx, r.channel())
	if _, err := r.ps.Receive(ctx); err != nil {
		r.ps.Close()
		return nil, fmt.Errorf("cluster stats: subscribe: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.serve(loopCtx)
	return r, nil
}

// Close stops answering.
func (r *Redis) Close() error {
	var err error
	r.once.Do(func() {
		r.stop()
		err = r.ps.Close()
		<-r.done
	})
	return err
}

func (r *Redis) channel() string           { return r.prefix + ":stats:requests" }
func (r *Redis) replyKey(id string) string { return r.prefix + ":stats:reply:" + id }

// Request kinds.
const (
	kindRoom        = "room"
	kindConnections = "connections"
	kindStatus      = "status"
)

// request is what an asker publishes.
type request struct {
	ID       string  `json:"id"`
	From     string  `json:"from"`
	Kind     string  `json:"kind"`
	Room     string  `json:"room,omitempty"`
	After    *Cursor `json:"after,omitempty"`
	Limit    int     `json:"limit,omitempty"`
	Deadline int64   `json:"deadline"` // unix ms: answering later is useless
}

// reply is what a node pushes; exactly the member of the request's kind
// is set (none in the asker's own acknowledgement).
type reply struct {
	Node        string       `json:"node"`
	Room        *RoomNode    `json:"room,omitempty"`
	Connections []Connection `json:"connections,omitempty"`
	Status      *NodeStatus  `json:"status,omitempty"`
}

var errMalformed = errors.New("cluster stats: malformed message")

// decodeRequest checks a request read from the channel.
func decodeRequest(b []byte) (request, error) {
	var q request
	if len(b) > maxRequestBytes {
		return q, errMalformed
	}
	if err := json.Unmarshal(b, &q); err != nil {
		return q, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if !validID(q.ID) || q.From == "" || len(q.From) > 128 || len(q.Room) > 128 || q.Limit < 0 || q.Limit > 1000 {
		return q, errMalformed
	}
	switch q.Kind {
	case kindRoom, kindStatus:
	case kindConnections:
		if q.Limit < 1 {
			return q, errMalformed
		}
	default:
		return q, errMalformed
	}
	return q, nil
}

// validID: the request ID is a key suffix; only what newRequestID makes.
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// decodeReply checks an answer popped from a reply list.
func decodeReply(b []byte, kind string) (reply, error) {
	var p reply
	if len(b) > maxReplyBytes {
		return p, errMalformed
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if p.Node == "" {
		return p, errMalformed
	}
	switch {
	case p.Room == nil && p.Connections == nil && p.Status == nil:
		// An acknowledgement without figures.
	case kind == kindRoom && p.Room != nil && p.Connections == nil && p.Status == nil:
		if p.Room.Connections < 0 {
			return p, errMalformed
		}
	case kind == kindConnections && p.Room == nil && p.Status == nil:
	case kind == kindStatus && p.Status != nil && p.Room == nil && p.Connections == nil:
	default:
		return p, errMalformed
	}
	return p, nil
}

// serve answers the requests of every node, this one's included.
func (r *Redis) serve(ctx context.Context) {
	defer close(r.done)
	ch := r.ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			q, err := decodeRequest([]byte(m.Payload))
			if err != nil {
				r.failures.malformed.Add(1)
				r.log.Warn("cluster stats: ignoring a malformed request (another program shares the Redis prefix?)", "err", err)
				continue
			}
			if time.Now().UnixMilli() > q.Deadline {
				continue
			}
			select {
			case r.sem <- struct{}{}:
				go func() {
					defer func() { <-r.sem }()
					r.answer(ctx, q)
				}()
			default:
				// Too many questions at once: the asker counts this node
				// as missing rather than this node queueing work.
				r.failures.busy.Add(1)
				r.log.Warn("cluster stats: too many questions at once, one left unanswered", "kind", q.Kind, "answering", maxAnswering)
			}
		}
	}
}

func (r *Redis) answer(ctx context.Context, q request) {
	p := reply{Node: r.node}
	if q.From != r.node {
		switch q.Kind {
		case kindRoom:
			room := r.src.Room(q.Room)
			room.Node = r.node
			p.Room = &room
		case kindConnections:
			p.Connections = pageOf(localConnections(r.src, r.node, q.Room), q.After, q.Limit)
			if p.Connections == nil {
				p.Connections = []Connection{}
			}
		case kindStatus:
			st := r.src.Status()
			st.Node = r.node
			p.Status = &st
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		r.log.Error("cluster stats: cannot encode an answer", "err", err)
		return
	}
	ctx, cancel := context.WithDeadline(ctx, time.UnixMilli(q.Deadline))
	defer cancel()
	key := r.replyKey(q.ID)
	_, err = r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.RPush(ctx, key, b)
		pipe.Expire(ctx, key, replyTTL)
		return nil
	})
	if err != nil {
		r.failures.answer.Add(1)
		r.log.Warn("cluster stats: cannot answer a request", "kind", q.Kind, "err", err)
	}
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ask publishes a request and collects the other nodes' answers. On a
// Redis failure it returns what it has with the error.
func (r *Redis) ask(ctx context.Context, q request) (answers []reply, asked int, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	q.ID, q.From, q.Deadline = newRequestID(), r.node, deadline.UnixMilli()
	b, err := json.Marshal(q)
	if err != nil {
		return nil, 0, err
	}
	n, err := r.client.Publish(ctx, r.channel(), b).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("cluster stats: publish: %w", err)
	}
	key := r.replyKey(q.ID)
	defer func() {
		// Answers that came after the deadline expire on their own.
		cctx, ccancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer ccancel()
		r.client.Del(cctx, key)
	}()
	for got := 0; got < int(n); got++ {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		// BLPOP's timeout has a granularity of its own; ctx bounds it too.
		res, err := r.client.BLPop(ctx, wait, key).Result()
		if err != nil {
			if errors.Is(err, redis.Nil) || ctx.Err() != nil {
				break
			}
			return answers, int(n), fmt.Errorf("cluster stats: collect answers: %w", err)
		}
		p, err := decodeReply([]byte(res[1]), q.Kind)
		if err != nil {
			r.failures.malformed.Add(1)
			r.log.Warn("cluster stats: ignoring a malformed answer", "err", err)
			continue
		}
		answers = append(answers, p)
	}
	return answers, int(n), nil
}

// settle counts what one question of this node lacked: the nodes that did
// not answer (returned), and a failure of the question itself, logged with
// what the answer falls back to.
func (r *Redis) settle(asked int, answers []reply, err error, fallback string) int {
	n := max(asked-len(answers), 0)
	r.failures.missing.Add(uint64(n))
	if err != nil {
		r.failures.redis.Add(1)
		r.log.Warn("cluster stats: "+fallback+" of this node only", "err", err)
	}
	return n
}

// RoomStats implements Gatherer.
func (r *Redis) RoomStats(ctx context.Context, roomID string) (RoomStats, error) {
	local := r.src.Room(roomID)
	local.Node = r.node
	answers, asked, err := r.ask(ctx, request{Kind: kindRoom, Room: roomID})
	parts := []RoomNode{local}
	for _, a := range answers {
		if a.Node != r.node && a.Room != nil {
			parts = append(parts, *a.Room)
		}
	}
	out := mergeRooms(parts)
	out.NodesMissing = r.settle(asked, answers, err, "figures")
	return out, nil
}

// RoomConnections implements Gatherer.
func (r *Redis) RoomConnections(ctx context.Context, roomID string, after *Cursor, limit int) (ConnectionsPage, error) {
	conns := pageOf(localConnections(r.src, r.node, roomID), after, limit)
	answers, asked, err := r.ask(ctx, request{Kind: kindConnections, Room: roomID, After: after, Limit: limit})
	nodes := 1
	for _, a := range answers {
		if a.Node == r.node {
			continue
		}
		nodes++
		// Only what the asker asked for: a node's answer is trusted for
		// its figures, not for the page bounds.
		conns = append(conns, pageOf(a.Connections, after, limit)...)
	}
	page := finishPage(conns, limit)
	page.Nodes, page.NodesMissing = nodes, r.settle(asked, answers, err, "connections")
	return page, nil
}

// Status implements Gatherer.
func (r *Redis) Status(ctx context.Context) (Status, error) {
	local := r.src.Status()
	local.Node = r.node
	answers, asked, err := r.ask(ctx, request{Kind: kindStatus})
	out := Status{Nodes: []NodeStatus{local}, NodesMissing: r.settle(asked, answers, err, "status")}
	for _, a := range answers {
		if a.Node != r.node && a.Status != nil {
			out.Nodes = append(out.Nodes, *a.Status)
		}
	}
	slices.SortFunc(out.Nodes, func(a, b NodeStatus) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}
