package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A small parser of the Prometheus text exposition format (version 0.0.4,
// what promhttp serves to a client that asks for nothing else): the
// generator reads a few counters and a histogram of the server under test
// and has no use for the rest of the format's machinery (types, help,
// exemplars), so the standard library is enough.

// promSample is one sample line: name{labels} value [timestamp].
type promSample struct {
	name   string
	labels []promLabel // in page order
	value  float64
}

type promLabel struct{ name, value string }

// label returns the value of label name ("" if absent, as in Prometheus).
func (s *promSample) label(name string) string {
	for _, l := range s.labels {
		if l.name == name {
			return l.value
		}
	}
	return ""
}

// promSyntaxError is a line the parser does not accept.
type promSyntaxError struct {
	Line int
	Msg  string
}

func (e *promSyntaxError) Error() string {
	return fmt.Sprintf("metrics page line %d: %s", e.Line, e.Msg)
}

// maxPromLine bounds one line; a label value longer than this is not a
// metric the generator reads.
const maxPromLine = 1 << 20

// parsePromText parses a metrics page. Comment and blank lines are skipped;
// any other line must be a well-formed sample.
func parsePromText(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxPromLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, &promSyntaxError{Line: n, Msg: err.Error()}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parsePromLine parses one sample line, already trimmed.
func parsePromLine(line string) (promSample, error) {
	var s promSample
	i := 0
	for i < len(line) && isPromNameByte(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return s, fmt.Errorf("no metric name in %q", clip(line))
	}
	s.name, line = line[:i], line[i:]
	// Blanks may separate the name, the labels and the value, and must
	// separate a name without labels from its value.
	rest := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(rest, "{") {
		var err error
		if s.labels, rest, err = parsePromLabels(rest[1:]); err != nil {
			return s, fmt.Errorf("%s: %w", s.name, err)
		}
		rest = strings.TrimLeft(rest, " \t")
	} else if len(rest) == len(line) {
		return s, fmt.Errorf("%s: no space before the value", s.name)
	}
	value, ts, _ := strings.Cut(rest, " ")
	v, err := parsePromFloat(value)
	if err != nil {
		return s, fmt.Errorf("%s: value %q", s.name, clip(value))
	}
	s.value = v
	if ts = strings.TrimSpace(ts); ts != "" {
		if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
			return s, fmt.Errorf("%s: timestamp %q", s.name, clip(ts))
		}
	}
	return s, nil
}

// parsePromLabels parses `name="value",...}` (the opening brace already
// consumed) and returns the labels and what follows the closing brace.
func parsePromLabels(p string) ([]promLabel, string, error) {
	var labels []promLabel
	for {
		p = strings.TrimLeft(p, " \t")
		if strings.HasPrefix(p, "}") {
			return labels, p[1:], nil
		}
		i := 0
		for i < len(p) && isPromNameByte(p[i], i == 0) && p[i] != ':' {
			i++
		}
		if i == 0 {
			return nil, "", fmt.Errorf("bad label name at %q", clip(p))
		}
		name := p[:i]
		p = strings.TrimLeft(p[i:], " \t")
		if !strings.HasPrefix(p, "=") {
			return nil, "", fmt.Errorf("label %s: want =", name)
		}
		p = strings.TrimLeft(p[1:], " \t")
		if !strings.HasPrefix(p, `"`) {
			return nil, "", fmt.Errorf("label %s: want a quoted value", name)
		}
		p = p[1:]
		var val strings.Builder
		for {
			if p == "" {
				return nil, "", fmt.Errorf("label %s: unterminated value", name)
			}
			c := p[0]
			p = p[1:]
			if c == '"' {
				break
			}
			if c == '\\' {
				if p == "" {
					return nil, "", fmt.Errorf("label %s: unterminated escape", name)
				}
				switch p[0] {
				case '\\', '"':
					c = p[0]
				case 'n':
					c = '\n'
				default:
					return nil, "", fmt.Errorf("label %s: bad escape \\%c", name, p[0])
				}
				p = p[1:]
			}
			val.WriteByte(c)
		}
		labels = append(labels, promLabel{name, val.String()})
		p = strings.TrimLeft(p, " \t")
		switch {
		case strings.HasPrefix(p, ","):
			p = p[1:]
		case strings.HasPrefix(p, "}"):
		default:
			return nil, "", fmt.Errorf("label %s: want , or } after the value", name)
		}
	}
}

// isPromNameByte reports whether c may appear in a metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*); label names are the same without ':'.
func isPromNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

// parsePromFloat accepts Go floats and the format's +Inf, -Inf and NaN,
// but not Go's other spellings (hex floats, "infinity", underscores).
func parsePromFloat(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	if strings.ContainsAny(s, "xXpP_iInN") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseFloat(s, 64)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// promSum is the sum of every series named name (all label sets), and
// whether there was any.
func promSum(samples []promSample, name string) (float64, bool) {
	var sum float64
	found := false
	for i := range samples {
		if samples[i].name == name {
			sum += samples[i].value
			found = true
		}
	}
	return sum, found
}

// promBucket is one cumulative bucket of a histogram: count observations
// were at most le.
type promBucket struct {
	le    float64
	count float64
}

// promHistogram returns the cumulative buckets of histogram name, summed
// over its label sets and sorted by bound, the last one +Inf; nil if the
// page has none or a bucket's bound does not parse.
func promHistogram(samples []promSample, name string) []promBucket {
	byLe := map[float64]float64{}
	for i := range samples {
		s := &samples[i]
		if s.name != name+"_bucket" {
			continue
		}
		le, err := parsePromFloat(s.label("le"))
		if err != nil || math.IsNaN(le) {
			return nil
		}
		byLe[le] += s.value
	}
	if _, ok := byLe[math.Inf(1)]; !ok {
		return nil
	}
	out := make([]promBucket, 0, len(byLe))
	for le, c := range byLe {
		out = append(out, promBucket{le, c})
	}
	slices.SortFunc(out, func(a, b promBucket) int { return cmp.Compare(a.le, b.le) })
	return out
}

// histDelta is after minus before, bucket by bucket; nil if the bounds
// differ (the server restarted with other buckets) or a count went down
// (the server restarted).
func histDelta(before, after []promBucket) []promBucket {
	if len(before) != len(after) || after == nil {
		return nil
	}
	out := make([]promBucket, len(after))
	for i := range after {
		if before[i].le != after[i].le || after[i].count < before[i].count {
			return nil
		}
		out[i] = promBucket{after[i].le, after[i].count - before[i].count}
	}
	return out
}

// histQuantile is the nearest-rank percentile p of cumulative buckets, as
// the upper bound of the bucket that holds it: the buckets are all the
// resolution there is. One in the +Inf bucket is reported as the largest
// finite bound, and above is set. ok is false without observations.
func histQuantile(buckets []promBucket, p float64) (v float64, above, ok bool) {
	if len(buckets) == 0 {
		return 0, false, false
	}
	total := buckets[len(buckets)-1].count
	if total < 1 {
		return 0, false, false
	}
	rank := max(math.Ceil(p*total-1e-9), 1)
	for i, b := range buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				if i == 0 {
					return 0, true, true
				}
				return buckets[i-1].le, true, true
			}
			return b.le, false, true
		}
	}
	return 0, false, false
}
