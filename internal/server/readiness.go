package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ivschatd/ivschatd/internal/throttle"
)

// Readiness (/readyz) answers whether this node can serve now: 200 when the
// store answers and, in cluster mode, Redis answers and the broker's pub/sub
// connection delivers; 503 naming each failing dependency otherwise, and
// while shutting down. /healthz is liveness: the process is up (503 only
// while shutting down); a load balancer or Kubernetes restarts nothing
// because a dependency is down.
const (
	// readyCheckTimeout bounds one dependency check: a black-holed database
	// must not hold a probe (and the requests queued behind it) for longer.
	readyCheckTimeout = 2 * time.Second
	// readyCacheFor is how long one result answers every probe, so that a
	// storm of probes (many load balancers, many pods) costs the
	// dependencies one round trip a second.
	readyCacheFor = time.Second
	// readyLogEvery keeps a lasting failure to one log line per dependency
	// per interval; the counter counts every failed check.
	readyLogEvery = 30 * time.Second
)

// dependencyCheck is one dependency a node needs to serve.
type dependencyCheck struct {
	name  string // as reported: store, redis, redis_pubsub
	check func(ctx context.Context) error
	// logged throttles this dependency's failure log lines.
	logged throttle.Every
}

// run checks the dependency within readyCheckTimeout. Not every client
// honours the context's deadline on a silent socket (go-redis keeps to its
// own read timeout), so the answer is not waited for past the bound; the
// check finishes in the background.
func (c *dependencyCheck) run() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyCheckTimeout)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- c.check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v", readyCheckTimeout)
	}
}

type readiness struct {
	checks []*dependencyCheck
	log    *slog.Logger

	mu       sync.Mutex // held across a check: concurrent probes share it
	at       time.Time
	failing  map[string]string // dependency -> why; empty when ready
	failures map[string]uint64 // counted checks that failed, by dependency
}

// newReadiness lists the dependencies of this node: the store, and in
// cluster mode Redis (commands: token ledger, rate limits, publishing) and
// the broker's pub/sub connection (receiving other nodes' traffic).
func (s *Server) newReadiness() *readiness {
	r := &readiness{log: s.log.With("component", "readiness"), failures: make(map[string]uint64)}
	st := s.store
	r.checks = append(r.checks, &dependencyCheck{name: "store", check: st.Ping})
	if s.redis != nil {
		rc, b := s.redis, s.broker
		r.checks = append(r.checks,
			&dependencyCheck{name: "redis", check: func(ctx context.Context) error { return rc.Ping(ctx).Err() }},
			&dependencyCheck{name: "redis_pubsub", check: func(context.Context) error { return b.Live() }})
	}
	for _, c := range r.checks {
		r.failures[c.name] = 0 // every dependency has a series from the start
	}
	return r
}

// status returns the failing dependencies (none: ready), checking them
// again when the last result is older than readyCacheFor. The checks run
// in parallel, each bounded by readyCheckTimeout.
func (r *readiness) status() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.failing != nil && now.Sub(r.at) < readyCacheFor {
		return r.failing
	}
	errs := make([]error, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() { errs[i] = c.run() })
	}
	wg.Wait()
	failing := make(map[string]string)
	for i, c := range r.checks {
		if errs[i] == nil {
			continue
		}
		failing[c.name] = errs[i].Error()
		r.failures[c.name]++
		if c.logged.Allow(now, readyLogEvery) {
			r.log.Warn("not ready: a dependency fails", "dependency", c.name, "err", errs[i])
		}
	}
	r.at, r.failing = time.Now(), failing
	return failing
}

// stats is the failed-check counters, for metrics.
func (r *readiness) stats() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.failures))
	for k, v := range r.failures {
		out[k] = v
	}
	return out
}

func isReadyCheck(r *http.Request) bool {
	return r.URL.Path == "/readyz" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// readyBody is the /readyz answer.
type readyBody struct {
	Status  string            `json:"status"` // ready, unavailable, shutting_down
	Failing map[string]string `json:"failing,omitempty"`
}

// serveReady answers /readyz. detailed says whether the reasons may be
// shown: the messaging listener faces viewers, so there it names the
// failing dependencies without the errors (which carry internal addresses);
// the log and the main listener have them.
func (s *Server) serveReady(w http.ResponseWriter, detailed bool) {
	body := readyBody{Status: "ready"}
	code := http.StatusOK
	if !s.ready.Load() {
		body.Status, code = "shutting_down", http.StatusServiceUnavailable
	} else if failing := s.readiness.status(); len(failing) > 0 {
		body.Status, code = "unavailable", http.StatusServiceUnavailable
		body.Failing = make(map[string]string, len(failing))
		for name, why := range failing {
			if !detailed {
				why = "unavailable"
			}
			body.Failing[name] = why
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
