package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ivschatd/ivschatd/internal/chatlog"
	"github.com/ivschatd/ivschatd/internal/messaging"
	"github.com/ivschatd/ivschatd/internal/review"
)

// The Amazon IVS Chat CloudWatch metrics (namespace AWS/IVSChat), exported
// under the names teams coming from IVS know. Naming rule: the prefix
// ivsNamespace, then the CloudWatch metric name in snake_case, then _total
// for counters; each CloudWatch dimension is a label of the snake_case
// dimension name with the same values. Every node exports its own counts;
// the cluster-wide value, what CloudWatch shows for a region, is the sum
// over nodes. docs/metrics.md maps each to the ivschatd_* metric it may
// replace.
const ivsNamespace = "ivschat"

func ivsDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ivsNamespace+"_"+name, help, labels, nil)
}

type ivsCollector struct {
	gateway func() messaging.Stats
	review  func() review.Stats
	chatlog func() chatlog.Stats

	concurrent, deliveries, deliveriesByAction, requests, requestsByAction *prometheus.Desc
	invocationErrors, responseValidationErrors                             *prometheus.Desc
	logAccessDenied, logErrors, logNotFound                                *prometheus.Desc
}

// IVS exports the ten IVS Chat CloudWatch metrics from the gateway's,
// the review handlers' and the chat-log pipeline's counters.
func IVS(gateway func() messaging.Stats, rev func() review.Stats, logs func() chatlog.Stats) prometheus.Collector {
	return &ivsCollector{
		gateway: gateway, review: rev, chatlog: logs,
		concurrent: ivsDesc("concurrent_chat_connections",
			"IVS ConcurrentChatConnections: open chat connections on this node (CloudWatch reports the maximum per minute; use max_over_time)."),
		deliveries: ivsDesc("messaging_deliveries_total",
			"IVS MessagingDeliveries: MESSAGE and EVENT frames delivered to chat connections (a broadcast to n connections counts n)."),
		deliveriesByAction: ivsDesc("deliveries_total",
			"IVS Deliveries by Action: messaging_deliveries_total by the action that produced the frame (SEND_MESSAGE, DELETE_MESSAGE, DISCONNECT_USER, SEND_EVENT).", "action"),
		requests: ivsDesc("messaging_requests_total",
			"IVS MessagingRequests: messaging requests received (WebSocket requests, malformed ones included, and the API's SendEvent, DeleteMessage, DisconnectUser)."),
		requestsByAction: ivsDesc("requests_total",
			"IVS Requests by Action: messaging requests received with a known action (SEND_MESSAGE, DELETE_MESSAGE, DISCONNECT_USER, SEND_EVENT).", "action"),
		invocationErrors: ivsDesc("invocation_errors_total",
			"IVS InvocationErrors by Uri: message review handler calls that failed (error, non-2xx, refused target, timeout). Webhook URLs without credentials, query or fragment; handlers beyond the first 256 as uri=\"other\".", "uri"),
		responseValidationErrors: ivsDesc("response_validation_errors_total",
			"IVS ResponseValidationErrors by Uri: message review handler answers that could not be parsed or broke the contract.", "uri"),
		logAccessDenied: ivsDesc("log_destination_access_denied_error_total",
			"IVS LogDestinationAccessDeniedError by LoggingConfiguration (ARN): chat-log delivery attempts the destination refused for lack of access.", "logging_configuration"),
		logErrors: ivsDesc("log_destination_errors_total",
			"IVS LogDestinationErrors by LoggingConfiguration (ARN): every failed chat-log delivery attempt (each is retried).", "logging_configuration"),
		logNotFound: ivsDesc("log_destination_resource_not_found_errors_total",
			"IVS LogDestinationResourceNotFoundErrors by LoggingConfiguration (ARN): chat-log delivery attempts that found no destination resource.", "logging_configuration"),
	}
}

func (c *ivsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.concurrent, c.deliveries, c.deliveriesByAction, c.requests, c.requestsByAction,
		c.invocationErrors, c.responseValidationErrors, c.logAccessDenied, c.logErrors, c.logNotFound} {
		ch <- d
	}
}

func (c *ivsCollector) Collect(ch chan<- prometheus.Metric) {
	count := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := c.gateway()
	ch <- prometheus.MustNewConstMetric(c.concurrent, prometheus.GaugeValue, float64(g.Connections))
	var delivered uint64
	for action, n := range g.DeliveriesByAction {
		delivered += n
		count(c.deliveriesByAction, n, action)
	}
	count(c.deliveries, delivered)
	count(c.requests, g.Requests)
	for action, n := range g.RequestsByAction {
		count(c.requestsByAction, n, action)
	}
	for uri, e := range c.review().ByURI {
		count(c.invocationErrors, e.InvocationErrors, uri)
		count(c.responseValidationErrors, e.ResponseValidationErrors, uri)
	}
	for arn, e := range c.chatlog().Configurations {
		count(c.logErrors, e.Errors, arn)
		count(c.logAccessDenied, e.AccessDenied, arn)
		count(c.logNotFound, e.ResourceAbsent, arn)
	}
}

// Setting exports a configured bound as a constant gauge, so that alerts and
// dashboards can compare what is used with it: messaging_connection_limit
// (--max-connections: of this node alone, or in cluster mode of the whole
// cluster) and chatlog_spool_limit_bytes (--chatlog-max-spool-bytes).
func Setting(name, help string, value float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
		func() float64 { return value })
}
