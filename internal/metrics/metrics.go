// Package metrics exposes ivschatd's Prometheus metrics. Subsystems keep their
// own cheap counters (atomics read through a Stats method); this package reads
// them only when Prometheus scrapes, so the chat hot path pays nothing for
// metrics.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chatlog"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
	"github.com/ivschatd/ivschatd/internal/connquota"
	"github.com/ivschatd/ivschatd/internal/messaging"
	"github.com/ivschatd/ivschatd/internal/review"
	"github.com/ivschatd/ivschatd/internal/tokenledger"
)

const namespace = "ivschatd"

// Registry holds every ivschatd collector.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &Registry{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "api", Name: "requests_total",
			Help: "Control-plane requests by operation and HTTP status.",
		}, []string{"operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Control-plane request latency by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"operation"}),
	}
	reg.MustRegister(r.requests, r.latency)
	return r
}

// ObserveRequest records one control-plane request (api.Observer).
func (r *Registry) ObserveRequest(operation string, status int, took time.Duration) {
	if operation == "" {
		operation = "unknown"
	}
	r.requests.WithLabelValues(operation, strconv.Itoa(status)).Inc()
	r.latency.WithLabelValues(operation).Observe(took.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Register adds a collector of another subsystem.
func (r *Registry) Register(c prometheus.Collector) { r.reg.MustRegister(c) }

// Gateway reads the messaging gateway's counters at scrape time.
func Gateway(stats func() messaging.Stats) prometheus.Collector {
	return newStatsCollector(stats, []statMetric[messaging.Stats]{
		gauge("messaging_connections", "Open chat connections (and handshakes in progress).", func(s messaging.Stats) float64 { return float64(s.Connections) }),
		gauge("messaging_rooms", "Rooms with at least one connection on this node.", func(s messaging.Stats) float64 { return float64(s.Rooms) }),
		counter("messaging_handshakes_accepted_total", "WebSocket handshakes accepted.", func(s messaging.Stats) float64 { return float64(s.Accepted) }),
		counterBy("messaging_handshakes_rejected_total", "WebSocket handshakes refused, by reason (token_missing, token_invalid, token_expired, token_used, room_not_found, banned, quota_exceeded, shutting_down, not_websocket, upgrade_failed and internal failures).", "reason", func(s messaging.Stats) map[string]uint64 { return s.RejectedByReason }),
		counter("messaging_frames_delivered_total", "WebSocket frames written to clients (a broadcast to n connections counts n).", func(s messaging.Stats) float64 { return float64(s.FramesDelivered) }),
		counter("messaging_writes_total", "Socket writes; frames_delivered/writes is the coalescing factor.", func(s messaging.Stats) float64 { return float64(s.Writes) }),
		histogramOf("messaging_frames_per_write", "Frames carried by one socket write (one writev per connection per flush; more frames per write when a busy room's broadcasts gather).", framesPerWrite),
		counter("messaging_slow_consumer_disconnects_total", "Connections closed as slow consumers (bytes offered a grace ago still not taken, a blocked write, or a full private queue).", func(s messaging.Stats) float64 { return float64(s.SlowConsumerDisconnects) }),
		counter("messaging_idle_disconnects_total", "Connections closed for missing pongs.", func(s messaging.Stats) float64 { return float64(s.IdleDisconnects) }),
		counter("messaging_published_total", "MESSAGE and EVENT frames published by this node.", func(s messaging.Stats) float64 { return float64(s.Published) }),
		counter("messaging_errors_sent_total", "ERROR frames sent to clients.", func(s messaging.Stats) float64 { return float64(s.ErrorsSent) }),
		counter("messaging_frames_not_recorded_total", "MESSAGE and EVENT frames refused because the room's chat log could not record them (the sender got an error; nobody received them).", func(s messaging.Stats) float64 { return float64(s.RecordFailures) }),
		counter("messaging_room_changes_not_propagated_total", "Room updates and deletions, and logging-configuration announcements, that the broker did not take: other nodes apply them only when they next read the store.", func(s messaging.Stats) float64 { return float64(s.ChangesNotPropagated) }),
		counter("messaging_viewer_count_failures_total", "Viewer-count rounds (ivschatd:viewer-count-interval) that failed: the room's tags could not be read, or the lease, the count or the publish failed; that room got no event that interval.", func(s messaging.Stats) float64 { return float64(s.ViewerCountFailures) }),
		counter("messaging_history_failures_total", "Reads and clears of a room's shared recent messages (ivschatd:history, Redis) that failed; a failed read serves joiners only messages sent from then on.", func(s messaging.Stats) float64 { return float64(s.HistoryFailures) }),
		counter("messaging_shared_limiter_failures_total", "Shared (Redis) rate-limiter calls that failed; this node's own buckets decided.", func(s messaging.Stats) float64 { return float64(s.LimiterFailures) }),
	})
}

// ConnQuota reads the cluster connection quota's state (cluster mode only).
func ConnQuota(stats func() connquota.Stats) prometheus.Collector {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return newStatsCollector(stats, []statMetric[connquota.Stats]{
		counter("connquota_redis_failures_total", "Redis calls of the cluster connection quota that failed; the node admitted up to its share of --max-connections meanwhile.", func(s connquota.Stats) float64 { return float64(s.Failures) }),
		gauge("connquota_degraded", "1 while Redis fails and this node admits up to its share of --max-connections, else 0.", func(s connquota.Stats) float64 { return b(s.Degraded) }),
		gauge("connquota_cluster_connections", "Connections of the whole cluster, as last seen in Redis.", func(s connquota.Stats) float64 { return float64(s.ClusterTotal) }),
		gauge("connquota_live_nodes", "Nodes with a live quota lease, as last seen in Redis.", func(s connquota.Stats) float64 { return float64(s.LiveNodes) }),
	})
}

// TokenLedger reads the single-node token ledger's counters.
func TokenLedger(stats func() tokenledger.SQLiteStats) prometheus.Collector {
	return newStatsCollector(stats, []statMetric[tokenledger.SQLiteStats]{
		counter("tokenledger_maintenance_failures_total", "Failed checkpoints and prunes of the used-token ledger file (used-tokens.db).", func(s tokenledger.SQLiteStats) float64 { return float64(s.MaintenanceFailures) }),
	})
}

// Review reads the message review handlers' counters and latency at scrape time.
func Review(stats func() review.Stats) prometheus.Collector {
	return &reviewCollector{
		stats:       stats,
		invocations: prometheus.NewDesc(namespace+"_review_invocations_total", "Message review handler invocations.", nil, nil),
		decisions:   prometheus.NewDesc(namespace+"_review_decisions_total", "Review decisions (fallbacks included).", []string{"result"}, nil),
		fallbacks:   prometheus.NewDesc(namespace+"_review_fallbacks_total", "Reviews decided by the room's fallbackResult, by reason.", []string{"reason"}, nil),
		latency:     prometheus.NewDesc(namespace+"_review_duration_seconds", "Message review handler latency.", nil, nil),
	}
}

func framesPerWrite(s messaging.Stats) histogram {
	h := s.FramesPerWrite
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[float64(b)] = h.Counts[i]
	}
	return histogram{count: h.Count, sum: float64(h.Sum), buckets: buckets}
}

type reviewCollector struct {
	stats                                      func() review.Stats
	invocations, decisions, fallbacks, latency *prometheus.Desc
}

func (c *reviewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.invocations
	ch <- c.decisions
	ch <- c.fallbacks
	ch <- c.latency
}

func (c *reviewCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.invocations, prometheus.CounterValue, float64(s.Invocations))
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(s.Allowed), "ALLOW")
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(s.Denied), "DENY")
	ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(s.Fallbacks.Timeout), "timeout")
	ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(s.Fallbacks.Error), "error")
	ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(s.Fallbacks.Invalid), "invalid")
	ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(s.Fallbacks.TargetRefused), "target_refused")
	buckets := make(map[float64]uint64, len(s.Latency.Bounds))
	for i, b := range s.Latency.Bounds {
		buckets[b.Seconds()] = s.Latency.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.latency, s.Latency.Count, s.Latency.Sum.Seconds(), buckets)
}

// ChatLog reads the chat-logging pipeline's per-destination counters.
func ChatLog(stats func() chatlog.Stats) prometheus.Collector {
	label := []string{"destination"}
	return &chatLogCollector{
		stats:     stats,
		spooled:   prometheus.NewDesc(namespace+"_chatlog_records_spooled_total", "Chat-log records written to a destination's spool.", label, nil),
		delivered: prometheus.NewDesc(namespace+"_chatlog_records_delivered_total", "Chat-log records the destination acknowledged.", label, nil),
		failed:    prometheus.NewDesc(namespace+"_chatlog_delivery_failures_total", "Failed delivery attempts (retried with backoff).", label, nil),
		dropped:   prometheus.NewDesc(namespace+"_chatlog_records_dropped_total", "Records dropped because the destination's spool was full (the frame was still delivered).", label, nil),
		failedToSpool: prometheus.NewDesc(namespace+"_chatlog_records_failed_to_spool_total",
			"Records that could not be written to the destination's spool (I/O error); the frame was refused, not delivered.", label, nil),
		bytes: prometheus.NewDesc(namespace+"_chatlog_spool_bytes", "Bytes in the destination's spool.", label, nil),
		routeFailures: prometheus.NewDesc(namespace+"_chatlog_route_lookup_failures_total",
			"Records whose room's logging destinations could not be read: outcome=stale used the room's last known destinations, outcome=refused found none known and the frame was refused.",
			[]string{"outcome"}, nil),
		routeRefreshFailures: prometheus.NewDesc(namespace+"_chatlog_route_refresh_failures_total",
			"Background re-reads of a room's logging destinations past the route TTL that failed; the room's records kept its last known destinations.",
			nil, nil),
	}
}

type chatLogCollector struct {
	stats                                                     func() chatlog.Stats
	spooled, delivered, failed, dropped, failedToSpool, bytes *prometheus.Desc
	routeFailures, routeRefreshFailures                       *prometheus.Desc
}

func (c *chatLogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.spooled, c.delivered, c.failed, c.dropped, c.failedToSpool, c.bytes, c.routeFailures, c.routeRefreshFailures} {
		ch <- d
	}
}

func (c *chatLogCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for name, d := range s.Destinations {
		ch <- prometheus.MustNewConstMetric(c.spooled, prometheus.CounterValue, float64(d.Spooled), name)
		ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(d.Delivered), name)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(d.FailedAttempts), name)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(d.Dropped), name)
		ch <- prometheus.MustNewConstMetric(c.failedToSpool, prometheus.CounterValue, float64(d.FailedToSpool), name)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(d.SpoolBytes), name)
	}
	ch <- prometheus.MustNewConstMetric(c.routeFailures, prometheus.CounterValue, float64(s.RoutesStale), "stale")
	ch <- prometheus.MustNewConstMetric(c.routeFailures, prometheus.CounterValue, float64(s.RoutesRefused), "refused")
	ch <- prometheus.MustNewConstMetric(c.routeRefreshFailures, prometheus.CounterValue, float64(s.RouteRefreshFailures))
}

// Broker reads the Redis broker's pub/sub connection counters (cluster mode).
func Broker(stats func() broker.RedisStats) prometheus.Collector {
	return newStatsCollector(stats, []statMetric[broker.RedisStats]{
		counterBy("broker_pubsub_reconnects_total", "Redis pub/sub connections replaced, by reason: probe_timeout (the connection delivered nothing, not even this node's liveness probe) or connection_error (go-redis re-dialed a broken connection). Messages published meanwhile were not delivered to this node.", "reason", func(s broker.RedisStats) map[string]uint64 { return s.Reconnects }),
		gauge("broker_pubsub_live", "1 when the Redis pub/sub connection is known to deliver (its liveness probe comes back), else 0.", func(s broker.RedisStats) float64 {
			if s.Live {
				return 1
			}
			return 0
		}),
	})
}

// ClusterStats counts what the cluster-wide figures of the extension API
// (GetRoomStats, ListRoomConnections, GetServerStatus) could not gather
// (cluster mode).
func ClusterStats(stats func() clusterstats.Stats) prometheus.Collector {
	return newStatsCollector(stats, []statMetric[clusterstats.Stats]{
		counterBy("cluster_stats_failures_total", "Failures of the cluster-wide figures of the extension API, by reason: redis (this node could not ask or collect, so the answer held its own figures only), missing (nodes that did not answer in time; the answer says nodesMissing), answer (this node could not post its answer), busy (this node left a question unanswered, already answering 8), malformed (a question or answer that did not decode).", "reason", func(s clusterstats.Stats) map[string]uint64 { return s.Failures }),
	})
}

// Readiness counts failed readiness checks by dependency (store, redis,
// redis_pubsub).
func Readiness(failures func() map[string]uint64) prometheus.Collector {
	return newStatsCollector(failures, []statMetric[map[string]uint64]{
		counterBy("readiness_check_failures_total", "Readiness checks (/readyz) that found a dependency failing, by dependency.", "dependency", func(m map[string]uint64) map[string]uint64 { return m }),
	})
}
