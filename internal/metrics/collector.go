package metrics

import "github.com/prometheus/client_golang/prometheus"

// statMetric is one metric derived from a subsystem's Stats snapshot:
// one value, (byLabel set) one value per value of its single label, or
// (hist set) a histogram.
type statMetric[S any] struct {
	desc    *prometheus.Desc
	kind    prometheus.ValueType
	value   func(S) float64
	byLabel func(S) map[string]uint64
	hist    func(S) histogram
}

// histogram is a distribution in the Prometheus layout: buckets maps each
// upper bound to the count of observations at most that (cumulative).
type histogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

// histogramOf is a histogram metric read from a Stats snapshot.
func histogramOf[S any](name, help string, h func(S) histogram) statMetric[S] {
	return statMetric[S]{desc: prometheus.NewDesc(namespace+"_"+name, help, nil, nil), hist: h}
}

func gauge[S any](name, help string, value func(S) float64) statMetric[S] {
	return statMetric[S]{prometheus.NewDesc(namespace+"_"+name, help, nil, nil), prometheus.GaugeValue, value, nil, nil}
}

func counter[S any](name, help string, value func(S) float64) statMetric[S] {
	return statMetric[S]{prometheus.NewDesc(namespace+"_"+name, help, nil, nil), prometheus.CounterValue, value, nil, nil}
}

// counterBy is a counter with one label, read from a map of label value to
// count.
func counterBy[S any](name, help, label string, values func(S) map[string]uint64) statMetric[S] {
	return statMetric[S]{desc: prometheus.NewDesc(namespace+"_"+name, help, []string{label}, nil), kind: prometheus.CounterValue, byLabel: values}
}

// statsCollector takes one Stats snapshot per scrape and reports every
// metric from it, so the values of one scrape are consistent.
type statsCollector[S any] struct {
	snapshot func() S
	metrics  []statMetric[S]
}

func newStatsCollector[S any](snapshot func() S, metrics []statMetric[S]) *statsCollector[S] {
	return &statsCollector[S]{snapshot: snapshot, metrics: metrics}
}

func (c *statsCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *statsCollector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for _, m := range c.metrics {
		if m.hist != nil {
			h := m.hist(s)
			ch <- prometheus.MustNewConstHistogram(m.desc, h.count, h.sum, h.buckets)
			continue
		}
		if m.byLabel != nil {
			for label, v := range m.byLabel(s) {
				ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(v), label)
			}
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
