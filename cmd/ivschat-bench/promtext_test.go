package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

// A page as promhttp writes it, with the oddities of the format: escapes in
// label values, +Inf, NaN, a timestamp, comments and blank lines.
const testPage = `# HELP ivschatd_messaging_frames_delivered_total WebSocket frames written.
# TYPE ivschatd_messaging_frames_delivered_total counter
ivschatd_messaging_frames_delivered_total 1.234567e+06
ivschatd_messaging_writes_total 4321

# TYPE ivschatd_messaging_frames_per_write histogram
ivschatd_messaging_frames_per_write_bucket{le="1"} 10
ivschatd_messaging_frames_per_write_bucket{le="2"} 30
ivschatd_messaging_frames_per_write_bucket{le="4"} 90
ivschatd_messaging_frames_per_write_bucket{le="+Inf"} 100
ivschatd_messaging_frames_per_write_sum 250
ivschatd_messaging_frames_per_write_count 100
weird{a="x\"y\\z\nw",b="}, {",} NaN 1700000000000
spaced { a = "1" , b="2" }-Inf
`

func TestParsePromText(t *testing.T) {
	s, err := parsePromText(strings.NewReader(testPage))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 10 {
		t.Fatalf("%d samples: %+v", len(s), s)
	}
	if s[0].name != metricFramesDelivered || s[0].value != 1234567 || len(s[0].labels) != 0 {
		t.Errorf("counter: %+v", s[0])
	}
	if s[5].label("le") != "+Inf" || s[5].value != 100 {
		t.Errorf("+Inf bucket: %+v", s[5])
	}
	w := s[8]
	if w.name != "weird" || w.label("a") != "x\"y\\z\nw" || w.label("b") != "}, {" || !math.IsNaN(w.value) || w.label("c") != "" {
		t.Errorf("escapes: %+v", w)
	}
	if sp := s[9]; sp.name != "spaced" || sp.label("a") != "1" || sp.label("b") != "2" || !math.IsInf(sp.value, -1) {
		t.Errorf("spaces: %+v", sp)
	}
	if v, ok := promSum(s, metricWrites); !ok || v != 4321 {
		t.Errorf("writes %v %v", v, ok)
	}
	if _, ok := promSum(s, "absent"); ok {
		t.Errorf("absent metric found")
	}
	h := promHistogram(s, metricFramesPerWrite)
	want := []promBucket{{1, 10}, {2, 30}, {4, 90}, {math.Inf(1), 100}}
	if len(h) != len(want) {
		t.Fatalf("histogram %v", h)
	}
	for i := range want {
		if h[i] != want[i] {
			t.Errorf("bucket %d: %v, want %v", i, h[i], want[i])
		}
	}
}

func TestParsePromTextErrors(t *testing.T) {
	for _, c := range []struct {
		page string
		line int
	}{
		{"ok 1\n{a=\"b\"} 1\n", 2},    // no name
		{"ok 1\n\nm{a=\"b} 1\n", 3},   // unterminated value
		{"m{a=b} 1\n", 1},             // unquoted value
		{"m{a=\"b\" c=\"d\"} 1\n", 1}, // missing comma
		{"m{a=\"\\t\"} 1\n", 1},       // unknown escape
		{"m 1 2 3\n", 1},              // bad timestamp
		{"m one\n", 1},                // bad value
		{"m 0x10\n", 1},               // Go syntax, not the format's
		{"m Inf\n", 1},                // the format spells it +Inf
		{"m{1a=\"b\"} 1\n", 1},        // bad label name
		{"m1\n", 1},                   // no value
		{"m{a:b=\"c\"} 1\n", 1},       // ':' is not allowed in label names
		{"m{a=\"b\"\n", 1},            // unterminated labels
		{"m{a=\"b\\", 1},              // unterminated escape
	} {
		_, err := parsePromText(strings.NewReader(c.page))
		var se *promSyntaxError
		if !errors.As(err, &se) || se.Line != c.line {
			t.Errorf("%q: %v, want a syntax error at line %d", c.page, err, c.line)
		}
	}
}

func TestHistQuantile(t *testing.T) {
	b := []promBucket{{1, 10}, {2, 30}, {4, 90}, {8, 99}, {math.Inf(1), 100}}
	for _, c := range []struct {
		p     float64
		want  float64
		above bool
	}{{0.10, 1, false}, {0.11, 2, false}, {0.50, 4, false}, {0.90, 4, false}, {0.99, 8, false}, {0.999, 8, true}, {1, 8, true}} {
		v, above, ok := histQuantile(b, c.p)
		if !ok || v != c.want || above != c.above {
			t.Errorf("p%v: %v above %v ok %v, want %v above %v", c.p*100, v, above, ok, c.want, c.above)
		}
	}
	if _, _, ok := histQuantile([]promBucket{{1, 0}, {math.Inf(1), 0}}, 0.5); ok {
		t.Errorf("quantile of nothing")
	}
	if v, above, ok := histQuantile([]promBucket{{math.Inf(1), 5}}, 0.5); !ok || !above || v != 0 {
		t.Errorf("only +Inf: %v %v %v", v, above, ok)
	}
	// A histogram without a +Inf bucket is not one.
	if h := promHistogram([]promSample{{name: "x_bucket", labels: []promLabel{{"le", "1"}}, value: 1}}, "x"); h != nil {
		t.Errorf("histogram without +Inf: %v", h)
	}
}

func TestFramesPerWriteOver(t *testing.T) {
	page := func(frames, writes int, buckets ...int) *serverMetrics {
		var sb strings.Builder
		sb.WriteString("ivschatd_messaging_frames_delivered_total " + strconv.Itoa(frames) + "\n")
		sb.WriteString("ivschatd_messaging_writes_total " + strconv.Itoa(writes) + "\n")
		if len(buckets) > 0 {
			// Two label sets, to check they are summed.
			for _, lbl := range []string{`kind="a",`, `kind="b",`} {
				for i, le := range []string{"1", "4", "16", "+Inf"} {
					sb.WriteString(metricFramesPerWrite + "_bucket{" + lbl + `le="` + le + `"} ` + strconv.Itoa(buckets[i]/2) + "\n")
				}
			}
			sb.WriteString(metricFramesPerWrite + "_sum " + strconv.Itoa(frames) + "\n")
			sb.WriteString(metricFramesPerWrite + "_count " + strconv.Itoa(writes) + "\n")
		}
		s, err := parsePromText(strings.NewReader(sb.String()))
		if err != nil {
			t.Fatal(err)
		}
		return serverMetricsOf(s)
	}
	// Counters only (today's server): 8,000 frames in 1,000 writes.
	f := framesPerWriteOver(page(2000, 500), page(10000, 1500))
	if f == nil || f.FramesDelivered != 8000 || f.Writes != 1000 || f.Mean != 8 || f.Histogram != nil {
		t.Errorf("counters: %+v", f)
	}
	// With the histogram: of the phase's 1,000 writes, 100 of one frame,
	// 400 of 2..4 (the 500th is the median), 490 of 5..16, 10 above 16.
	f = framesPerWriteOver(page(2000, 500, 100, 400, 500, 500), page(10000, 1500, 200, 900, 1490, 1500))
	if f == nil || f.Histogram == nil {
		t.Fatalf("histogram missing: %+v", f)
	}
	if h := *f.Histogram; h != (framesPerWriteHist{Writes: 1000, Mean: 8, P50: 4, P99: 16}) {
		t.Errorf("histogram: %+v", h)
	}
	f = framesPerWriteOver(page(0, 0, 0, 0, 0, 0), page(100, 10, 0, 0, 0, 10))
	if h := f.Histogram; h.P50 != 16 || !h.P50Above || !h.P99Above {
		t.Errorf("all above the largest bound: %+v", h)
	}
	// A restart (counters went down) or a server without the counters
	// gives nothing rather than nonsense.
	if f := framesPerWriteOver(page(10000, 1500), page(100, 10)); f != nil {
		t.Errorf("restart: %+v", f)
	}
	if f := framesPerWriteOver(page(1, 1), serverMetricsOf(nil)); f != nil {
		t.Errorf("no counters: %+v", f)
	}
	if f := framesPerWriteOver(nil, page(1, 1)); f != nil {
		t.Errorf("unreadable before: %+v", f)
	}
	// A histogram whose buckets went backwards is left out; the counters stay.
	if f := framesPerWriteOver(page(0, 0, 5, 5, 5, 5), page(100, 10, 0, 0, 0, 10)); f == nil || f.Histogram != nil || f.Mean != 10 {
		t.Errorf("histogram reset: %+v", f)
	}
}

// formatPromSample writes s back in the text format, to check that the
// parser's reading is the page's meaning.
func formatPromSample(s promSample) string {
	var sb strings.Builder
	sb.WriteString(s.name)
	if len(s.labels) > 0 {
		sb.WriteByte('{')
		for i, l := range s.labels {
			if i > 0 {
				sb.WriteByte(',')
			}
			r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
			sb.WriteString(l.name + `="` + r.Replace(l.value) + `"`)
		}
		sb.WriteByte('}')
	}
	sb.WriteByte(' ')
	switch {
	case math.IsInf(s.value, 1):
		sb.WriteString("+Inf")
	case math.IsInf(s.value, -1):
		sb.WriteString("-Inf")
	case math.IsNaN(s.value):
		sb.WriteString("NaN")
	default:
		sb.WriteString(strconv.FormatFloat(s.value, 'g', -1, 64))
	}
	return sb.String()
}

func FuzzParsePromText(f *testing.F) {
	f.Add(testPage)
	f.Add("m 1\n")
	f.Add(`m{le="+Inf"} 3 17` + "\n")
	f.Add(`m{a="\\\"\n"} -1.5e-3` + "\n")
	f.Add("# just a comment\n\n")
	f.Add("m{a=\"b\",} 1\r\n")
	f.Fuzz(func(t *testing.T, page string) {
		samples, err := parsePromText(strings.NewReader(page))
		if err != nil {
			var se *promSyntaxError
			if !errors.As(err, &se) && !strings.Contains(err.Error(), "token too long") {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// What was read, written back and read again, is the same.
		var sb strings.Builder
		for _, s := range samples {
			sb.WriteString(formatPromSample(s) + "\n")
		}
		again, err := parsePromText(strings.NewReader(sb.String()))
		if err != nil || len(again) != len(samples) {
			t.Fatalf("re-reading %q: %v (%d of %d samples)", sb.String(), err, len(again), len(samples))
		}
		for i := range samples {
			a, b := samples[i], again[i]
			if a.name != b.name || len(a.labels) != len(b.labels) ||
				(a.value != b.value && !(math.IsNaN(a.value) && math.IsNaN(b.value))) {
				t.Fatalf("sample %d: %+v then %+v", i, a, b)
			}
			for j := range a.labels {
				if a.labels[j] != b.labels[j] {
					t.Fatalf("sample %d label %d: %+v then %+v", i, j, a.labels[j], b.labels[j])
				}
			}
		}
		// The helpers take any page.
		promHistogram(samples, "m")
		serverMetricsOf(samples)
	})
}
