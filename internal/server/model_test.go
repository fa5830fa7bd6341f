package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	ivstypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/ivschatd/ivschatd/internal/config"
)

// The model-driven validation test: every constraint the Smithy model puts on
// an input member becomes boundary cases sent to a running server, so the
// server's validation cannot drift from the model unnoticed, and a new model
// (with new members or limits) brings its cases along without code changes.

const (
	modelFile = "testdata/ivschat-2020-07-14.json"
	// modelSHA256 pins the model: the cases are only as good as the model they
	// come from, so an edited copy must fail loudly (see testdata/README.md).
	modelSHA256 = "b0c31abca2f60d1b9de5ec93580c734095935474baba75834396e6732e1bc6fa"
	modelNS     = "com.amazonaws.ivschat#"
)

// Shapes that need the documented deviations below.
const (
	shapeRoomIdentifier   = modelNS + "RoomIdentifier"
	shapeLCIdentifier     = modelNS + "LoggingConfigurationIdentifier"
	shapeResourceArn      = modelNS + "ResourceArn"
	shapeLambdaArn        = modelNS + "LambdaArn"
	shapePaginationToken  = modelNS + "PaginationToken"
	modelUnknownEnumValue = "NOT_A_MODELED_VALUE"
)

// realARNPattern replaces the model's ResourceArn pattern. The model's
// `...:[a-z-]/...` matches a single character where the resource type goes,
// so it rejects every real room or logging-configuration ARN; the server
// validates the {resourceArn} label against the two real ARN shapes instead.
const realARNPattern = `^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:(room|logging-configuration)/[a-zA-Z0-9-]+$`

// Documented extensions: values outside a model pattern that the server
// accepts on purpose. A "pattern violation" case must not pick one of them.
var (
	bareIDPattern  = regexp.MustCompile(`^[a-zA-Z0-9]{12}$`) // identifiers: a bare resource ID
	webhookPattern = regexp.MustCompile(`^https?://\S+$`)    // messageReviewHandler.uri: an http(s) webhook
)

// wideRune fills members without a pattern: one code point, four UTF-8 bytes
// and two UTF-16 units, so a server counting bytes or UTF-16 units instead of
// code points fails the "max" cases.
const wideRune = "😀"

// --- Smithy JSON AST (only what the test needs) ---

type smithyModel struct {
	Shapes map[string]*smithyShape `json:"shapes"`
}

type smithyShape struct {
	Type    string                     `json:"type"`
	Input   *smithyMember              `json:"input"`
	Member  *smithyMember              `json:"member"`
	Key     *smithyMember              `json:"key"`
	Value   *smithyMember              `json:"value"`
	Members map[string]*smithyMember   `json:"members"`
	Traits  map[string]json.RawMessage `json:"traits"`
}

type smithyMember struct {
	Target string                     `json:"target"`
	Traits map[string]json.RawMessage `json:"traits"`
}

type smithyBounds struct {
	Min *float64 `json:"min"`
	Max *float64 `json:"max"`
}

type smithyHTTP struct {
	Method string `json:"method"`
	URI    string `json:"uri"`
}

// constraints are the validation traits of a member and its target, merged.
type constraints struct {
	length  *smithyBounds
	rng     *smithyBounds
	pattern *regexp.Regexp
	enum    []string
}

// lengthBounds returns the length trait as ints; hi < 0 means unbounded.
func (c constraints) lengthBounds() (lo, hi int) {
	return boundsOf(c.length)
}

func boundsOf(b *smithyBounds) (lo, hi int) {
	lo, hi = 0, -1
	if b != nil && b.Min != nil {
		lo = int(*b.Min)
	}
	if b != nil && b.Max != nil {
		hi = int(*b.Max)
	}
	return lo, hi
}

// fixtures are the real resources valid base requests name.
type fixtures struct {
	roomARN, lcARN string
}

// modelCase is one request: a valid base request of op with one member set to
// a boundary value.
type modelCase struct {
	op     string
	label  string // member path as shown in the subtest name
	name   string // min-1, min, max, max+1, pattern, enum=..., ...
	fields []string
	// invalid: the server must answer ValidationException naming fields[0]
	// (or another of fields); otherwise it must not name any of them.
	invalid bool
	apply   func(fx fixtures, req map[string]any)
	// reference, for opaque members (pagination tokens), sets a value that is
	// well within the length limits but semantically wrong: see runModelCase.
	reference func(fx fixtures, req map[string]any)
}

// updater replaces the value at one location of a request with f(old).
type updater func(fx fixtures, req map[string]any, f func(old any) any)

type modelGen struct {
	t     *testing.T
	m     *smithyModel
	cases []modelCase
}

func (g *modelGen) shape(id string) *smithyShape {
	if s := g.m.Shapes[id]; s != nil {
		return s
	}
	// Prelude shapes (smithy.api#String, ...) are not in the file and carry no
	// constraints.
	if name, ok := strings.CutPrefix(id, "smithy.api#"); ok {
		return &smithyShape{Type: strings.ToLower(name)}
	}
	g.t.Fatalf("model: unknown shape %s", id)
	return nil
}

func trait[T any](t *testing.T, traits map[string]json.RawMessage, name string) (T, bool) {
	var v T
	raw, ok := traits[name]
	if !ok {
		return v, false
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("model: trait %s: %v", name, err)
	}
	return v, true
}

// constraintsOf merges the traits of the target shape and of the member (a
// member trait overrides the target's, as in Smithy).
func (g *modelGen) constraintsOf(target string, member map[string]json.RawMessage) constraints {
	s := g.shape(target)
	var c constraints
	for _, traits := range []map[string]json.RawMessage{s.Traits, member} {
		if b, ok := trait[smithyBounds](g.t, traits, "smithy.api#length"); ok {
			c.length = &b
		}
		if b, ok := trait[smithyBounds](g.t, traits, "smithy.api#range"); ok {
			c.rng = &b
		}
		if p, ok := trait[string](g.t, traits, "smithy.api#pattern"); ok {
			c.pattern = regexp.MustCompile(p)
		}
		if e, ok := trait[[]struct{ Value string }](g.t, traits, "smithy.api#enum"); ok {
			c.enum = nil
			for _, v := range e {
				c.enum = append(c.enum, v.Value)
			}
		}
	}
	if s.Type == "enum" {
		for _, name := range sortedMemberNames(s.Members) {
			v, ok := trait[string](g.t, s.Members[name].Traits, "smithy.api#enumValue")
			if !ok {
				v = name
			}
			c.enum = append(c.enum, v)
		}
	}
	if target == shapeResourceArn {
		if c.pattern == nil || c.pattern.MatchString("arn:aws:ivschat:us-west-2:123456789012:room/abcdefABCDEF") {
			g.t.Fatalf("model: the ResourceArn pattern no longer rejects real ARNs; drop the realARNPattern override")
		}
		c.pattern = regexp.MustCompile(realARNPattern)
	}
	return c
}

func sortedMemberNames(m map[string]*smithyMember) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func isRequired(m *smithyMember) bool {
	_, ok := m.Traits["smithy.api#required"]
	return ok
}

// valid returns a fresh valid value of a shape: structures with their required
// members, the shortest allowed strings, the smallest allowed numbers, and the
// real fixtures for identifiers.
func (g *modelGen) valid(fx fixtures, id string) any {
	switch id {
	case shapeRoomIdentifier, shapeResourceArn:
		return fx.roomARN
	case shapeLCIdentifier:
		return fx.lcARN
	}
	s := g.shape(id)
	switch s.Type {
	case "structure":
		obj := map[string]any{}
		for _, name := range sortedMemberNames(s.Members) {
			if m := s.Members[name]; isRequired(m) {
				obj[name] = g.valid(fx, m.Target)
			}
		}
		return obj
	case "union":
		name := sortedMemberNames(s.Members)[0]
		return map[string]any{name: g.valid(fx, s.Members[name].Target)}
	case "list", "set":
		return []any{}
	case "map":
		return map[string]any{}
	case "string", "enum":
		c := g.constraintsOf(id, nil)
		if len(c.enum) > 0 {
			return c.enum[0]
		}
		lo, hi := c.lengthBounds()
		if c.pattern == nil {
			return strings.Repeat("a", max(lo, 1))
		}
		s, ok := shortestMatching(c.pattern, max(lo, 1), hi)
		if !ok {
			g.t.Fatalf("model: cannot generate a valid %s", id)
		}
		return s
	case "integer", "long", "short", "byte":
		lo, _ := boundsOf(g.constraintsOf(id, nil).rng)
		return max(lo, 1)
	case "boolean":
		return false
	}
	g.t.Fatalf("model: no valid value for %s (%s)", id, s.Type)
	return nil
}

func (g *modelGen) add(c modelCase) { g.cases = append(g.cases, c) }

func setTo(upd updater, v any) func(fixtures, map[string]any) {
	return func(fx fixtures, req map[string]any) {
		upd(fx, req, func(any) any { return v })
	}
}

// walk emits the cases of one member (path) and of everything nested in it.
func (g *modelGen) walk(op, path string, upd updater, target string, memberTraits map[string]json.RawMessage, depth int) {
	if depth > 8 {
		g.t.Fatalf("model: %s.%s nests too deep (recursive shape?)", op, path)
	}
	s := g.shape(target)
	c := g.constraintsOf(target, memberTraits)
	switch s.Type {
	case "structure":
		for _, name := range sortedMemberNames(s.Members) {
			m := s.Members[name]
			g.walk(op, path+"."+name, structMemberUpdater(g, upd, target, name), m.Target, m.Traits, depth+1)
		}
	case "union":
		// Each variant is tested with the union set to that variant alone, as a
		// union value must have exactly one member.
		for _, name := range sortedMemberNames(s.Members) {
			m := s.Members[name]
			variant := name
			vupd := func(fx fixtures, req map[string]any, f func(any) any) {
				upd(fx, req, func(old any) any {
					o, _ := old.(map[string]any)
					v := o[variant]
					if v == nil {
						v = g.valid(fx, m.Target)
					}
					return map[string]any{variant: f(v)}
				})
			}
			g.walk(op, path+"."+name, vupd, m.Target, m.Traits, depth+1)
		}
	case "list", "set":
		elem := s.Member.Target
		if c.length != nil {
			g.countCases(op, path, c, func(fx fixtures, n int) any {
				l := make([]any, n)
				for i := range l {
					l[i] = g.valid(fx, elem)
				}
				return l
			}, upd)
		}
		eupd := func(fx fixtures, req map[string]any, f func(any) any) {
			upd(fx, req, func(any) any { return []any{f(g.valid(fx, elem))} })
		}
		g.walk(op, path+"[0]", eupd, elem, s.Member.Traits, depth+1)
	case "map":
		keyTarget, valueTarget := s.Key.Target, s.Value.Target
		kc := g.constraintsOf(keyTarget, s.Key.Traits)
		if c.length != nil {
			// A map's length is its number of entries.
			g.countCases(op, path, c, func(fx fixtures, n int) any {
				m := map[string]any{}
				for i := range n {
					k := fmt.Sprintf("k%02d", i)
					if kc.pattern != nil && !kc.pattern.MatchString(k) {
						g.t.Fatalf("model: generated key %q breaks %s", k, keyTarget)
					}
					m[k] = g.valid(fx, valueTarget)
				}
				return m
			}, upd)
		}
		// A bad key is reported under the map member's name (the key has no
		// path of its own).
		g.stringCases(op, path+"(key)", []string{path}, keyTarget, kc, func(v string) func(fixtures, map[string]any) {
			return func(fx fixtures, req map[string]any) {
				upd(fx, req, func(any) any { return map[string]any{v: g.valid(fx, valueTarget)} })
			}
		})
		// The model gives map values no path either; our api names the entry
		// (tags.<key>) so the client finds the culprit, and naming the map
		// would be as good.
		const key = "k"
		vc := g.constraintsOf(valueTarget, s.Value.Traits)
		g.stringCases(op, path+"(value)", []string{path + "." + key, path}, valueTarget, vc, func(v string) func(fixtures, map[string]any) {
			return func(fx fixtures, req map[string]any) {
				upd(fx, req, func(any) any { return map[string]any{key: v} })
			}
		})
	case "string", "enum":
		g.stringCases(op, path, []string{path}, target, c, func(v string) func(fixtures, map[string]any) {
			return setTo(upd, v)
		})
	case "integer", "long", "short", "byte":
		if c.rng == nil {
			return
		}
		boundaryCases(c.rng, false, func(n int, invalid bool, name string) {
			g.add(modelCase{op: op, label: path, name: name, fields: []string{path}, invalid: invalid, apply: setTo(upd, n)})
		})
	}
}

func structMemberUpdater(g *modelGen, parent updater, structID, name string) updater {
	return func(fx fixtures, req map[string]any, f func(any) any) {
		parent(fx, req, func(old any) any {
			obj, _ := old.(map[string]any)
			if obj == nil {
				obj = g.valid(fx, structID).(map[string]any)
			}
			obj[name] = f(obj[name])
			return obj
		})
	}
}

// boundaryCases calls emit for min-1 (when >= 0), min, max and max+1 of b.
// A length without min starts at 0; a range without min has no lower bound.
func boundaryCases(b *smithyBounds, isLength bool, emit func(n int, invalid bool, name string)) {
	lo, hi := boundsOf(b)
	if b.Min != nil && lo-1 >= 0 {
		emit(lo-1, true, "min-1")
	}
	if b.Min != nil || isLength {
		emit(lo, false, "min")
	}
	if hi >= 0 {
		emit(hi, false, "max")
		emit(hi+1, true, "max+1")
	}
}

// countCases emits the boundary cases of a list's items or a map's entries.
func (g *modelGen) countCases(op, path string, c constraints, build func(fx fixtures, n int) any, upd updater) {
	boundaryCases(c.length, true, func(n int, invalid bool, name string) {
		g.add(modelCase{op: op, label: path, name: name, fields: []string{path}, invalid: invalid,
			apply: func(fx fixtures, req map[string]any) {
				upd(fx, req, func(any) any { return build(fx, n) })
			}})
	})
}

// stringCases emits the length, pattern and enum cases of a string member.
func (g *modelGen) stringCases(op, label string, fields []string, target string, c constraints, set func(string) func(fixtures, map[string]any)) {
	addApply := func(name string, apply func(fixtures, map[string]any), invalid bool) {
		mc := modelCase{op: op, label: label, name: name, fields: fields, invalid: invalid, apply: apply}
		if target == shapePaginationToken && !invalid {
			// Any string within the limits is a valid PaginationToken for the
			// model, but only tokens the server issued mean something: a
			// garbage token of valid length is refused for what it says, not
			// for its length. The case compares against a one-character
			// garbage token (see runModelCase).
			mc.reference = set("x")
		}
		g.add(mc)
	}
	add := func(name, v string, invalid bool) { addApply(name, set(v), invalid) }
	if len(c.enum) > 0 {
		// An enum's valid values are exactly its listed ones.
		for _, v := range c.enum {
			add("enum="+v, v, false)
		}
		if slices.Contains(c.enum, modelUnknownEnumValue) {
			g.t.Fatalf("model: %s lists %s", target, modelUnknownEnumValue)
		}
		add("enum-unknown", modelUnknownEnumValue, true)
		return
	}
	lo, hi := c.lengthBounds()
	// ofLength is a string of n code points that satisfies the pattern when
	// one exists, so a length case tests only the length.
	ofLength := func(n int) (string, bool) {
		if c.pattern == nil {
			return strings.Repeat(wideRune, n), true
		}
		return genMatching(c.pattern, n)
	}
	if c.length != nil {
		if c.length.Min != nil && lo-1 >= 0 {
			s, ok := ofLength(lo - 1)
			if !ok {
				s = strings.Repeat("a", lo-1)
			}
			add("min-1", s, true)
		}
		// With a pattern the shortest match may be longer than the length
		// minimum (an ARN cannot be 1 character): the lower boundary is then
		// the shortest string the pattern admits.
		s, ok := shortestMatching(c.pattern, lo, hi)
		if c.pattern == nil {
			s, ok = ofLength(lo)
		}
		if !ok {
			g.t.Fatalf("model: no valid value of %s.%s within its length", op, label)
		}
		add("min", s, false)
		if hi >= 0 {
			s, ok := ofLength(hi)
			if !ok {
				g.t.Fatalf("model: no valid value of %s.%s of length %d", op, label, hi)
			}
			add("max", s, false)
			if s, ok = ofLength(hi + 1); !ok {
				s = strings.Repeat("a", hi+1)
			}
			add("max+1", s, true)
		}
	}
	if c.pattern != nil {
		s, ok := patternViolation(c.pattern, target, lo, hi)
		if !ok {
			g.t.Fatalf("model: cannot break the pattern of %s.%s within its length", op, label)
		}
		add("pattern", s, true)
	}
	if target == shapeResourceArn {
		// The model's pattern being unusable, the real resources are the
		// "just inside" values that matter most.
		addApply("real-room", func(fx fixtures, req map[string]any) { set(fx.roomARN)(fx, req) }, false)
		addApply("real-logging-configuration", func(fx fixtures, req map[string]any) { set(fx.lcARN)(fx, req) }, false)
	}
}

// patternViolation returns a string of valid length that breaks the pattern
// and that no documented extension accepts.
func patternViolation(re *regexp.Regexp, target string, lo, hi int) (string, bool) {
	n := max(lo, 1)
	if hi >= 0 && n > hi {
		return "", false
	}
	for _, r := range []string{"!", " ", "~", "é"} {
		s := strings.Repeat(r, n)
		if re.MatchString(s) {
			continue
		}
		switch target {
		case shapeRoomIdentifier, shapeLCIdentifier:
			if bareIDPattern.MatchString(s) {
				continue
			}
		case shapeLambdaArn:
			if webhookPattern.MatchString(s) {
				continue
			}
		}
		return s, true
	}
	return "", false
}

// --- strings matching a pattern ---

// shortestMatching returns the shortest string of lo..hi code points (hi < 0:
// unbounded, searched up to 1024) that re matches.
func shortestMatching(re *regexp.Regexp, lo, hi int) (string, bool) {
	if re == nil {
		return "", false
	}
	limit := hi
	if limit < 0 {
		limit = 1024
	}
	for n := lo; n <= limit; n++ {
		if s, ok := genMatching(re, n); ok {
			return s, true
		}
	}
	return "", false
}

// genMatching returns a string of exactly n code points that re matches. It
// walks the parsed pattern (Smithy patterns are ECMA-262 regexes within what
// RE2 parses) and checks its result with re itself, so a construct it handles
// imperfectly yields no string rather than a wrong one.
func genMatching(re *regexp.Regexp, n int) (string, bool) {
	parsed, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return "", false
	}
	g := &patternGen{memo: map[patternKey]patternVal{}}
	s, ok := g.gen(parsed.Simplify(), n)
	if !ok || utf8.RuneCountInString(s) != n || !re.MatchString(s) {
		return "", false
	}
	return s, true
}

type patternKey struct {
	re   *syntax.Regexp
	i, n int
}

type patternVal struct {
	s  string
	ok bool
}

type patternGen struct {
	memo map[patternKey]patternVal
}

func (g *patternGen) gen(re *syntax.Regexp, n int) (string, bool) {
	k := patternKey{re, -1, n}
	if v, ok := g.memo[k]; ok {
		return v.s, v.ok
	}
	s, ok := g.gen1(re, n)
	g.memo[k] = patternVal{s, ok}
	return s, ok
}

func (g *patternGen) gen1(re *syntax.Regexp, n int) (string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return "", n == 0
	case syntax.OpLiteral:
		return string(re.Rune), len(re.Rune) == n
	case syntax.OpCharClass:
		if n != 1 || len(re.Rune) == 0 {
			return "", false
		}
		return string(pickRune(re.Rune)), true
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		// Any code point will do: a wide one also checks code-point counting.
		return wideRune, n == 1
	case syntax.OpCapture:
		return g.gen(re.Sub[0], n)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if s, ok := g.gen(sub, n); ok {
				return s, true
			}
		}
	case syntax.OpConcat:
		return g.seq(re, 0, n)
	case syntax.OpStar:
		return g.repeat(re.Sub[0], 0, -1, n)
	case syntax.OpPlus:
		return g.repeat(re.Sub[0], 1, -1, n)
	case syntax.OpQuest:
		return g.repeat(re.Sub[0], 0, 1, n)
	case syntax.OpRepeat:
		return g.repeat(re.Sub[0], re.Min, re.Max, n)
	}
	return "", false
}

// seq generates the concatenation re.Sub[i:] with n code points, giving the
// earlier parts as few as possible: the extra length lands at the end (the
// resource ID of an ARN), which keeps generated ARNs readable.
func (g *patternGen) seq(re *syntax.Regexp, i, n int) (string, bool) {
	if i == len(re.Sub) {
		return "", n == 0
	}
	k := patternKey{re, i, n}
	if v, ok := g.memo[k]; ok {
		return v.s, v.ok
	}
	var out patternVal
	for l := 0; l <= n; l++ {
		head, ok := g.gen(re.Sub[i], l)
		if !ok {
			continue
		}
		if tail, ok := g.seq(re, i+1, n-l); ok {
			out = patternVal{head + tail, true}
			break
		}
	}
	g.memo[k] = out
	return out.s, out.ok
}

// repeat generates count copies of one string of sub, count in min..max.
func (g *patternGen) repeat(sub *syntax.Regexp, lo, hi, n int) (string, bool) {
	if n == 0 {
		return "", lo == 0
	}
	for unit := 1; unit <= n; unit++ {
		count := n / unit
		if n%unit != 0 || count < lo || (hi >= 0 && count > hi) {
			continue
		}
		if s, ok := g.gen(sub, unit); ok {
			return strings.Repeat(s, count), true
		}
	}
	return "", false
}

// pickRune prefers a letter or digit so generated values look like real ones.
func pickRune(ranges []rune) rune {
	for _, want := range []rune{'a', '0', 'A'} {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= want && want <= ranges[i+1] {
				return want
			}
		}
	}
	return ranges[0]
}

// --- the wire ---

type modelOp struct {
	name    string
	method  string
	uri     string
	members map[string]*smithyMember
}

type modelWireError struct {
	Type      string `json:"__type"`
	Message   string `json:"message"`
	FieldList []struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"fieldList"`
}

type modelResponse struct {
	status int
	err    modelWireError
	body   string
}

// code is the error code without the namespace or extra text some services add.
func (r modelResponse) code() string {
	c := r.err.Type
	if i := strings.LastIndexByte(c, '#'); i >= 0 {
		c = c[i+1:]
	}
	c, _, _ = strings.Cut(c, ":")
	return c
}

// validationOf returns the fieldList message naming one of fields, if the
// response is a ValidationException that does.
func (r modelResponse) validationOf(fields []string) (string, bool) {
	if r.code() != "ValidationException" {
		return "", false
	}
	for _, f := range r.err.FieldList {
		if slices.Contains(fields, f.Name) {
			return f.Message, true
		}
	}
	return "", false
}

// escapeLabel percent-encodes an httpLabel value as the SDKs do: everything
// but the RFC 3986 unreserved characters, "/" and ":" included.
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// send puts req on the wire following the operation's HTTP bindings, signed
// with SigV4 like an SDK would but without its client-side validation.
func sendModelRequest(t *testing.T, baseURL string, op *modelOp, req map[string]any) modelResponse {
	t.Helper()
	path := op.uri
	query := url.Values{}
	body := map[string]any{}
	for name, v := range req {
		m := op.members[name]
		if m == nil {
			t.Fatalf("%s has no member %s", op.name, name)
		}
		if _, ok := m.Traits["smithy.api#httpLabel"]; ok {
			s, _ := v.(string)
			path = strings.Replace(path, "{"+name+"}", escapeLabel(s), 1)
			continue
		}
		if q, ok := trait[string](t, m.Traits, "smithy.api#httpQuery"); ok {
			switch v := v.(type) {
			case []any:
				// A list is the parameter repeated; an empty list has no
				// wire form at all, so UntagResource's "min" case (0 tagKeys)
				// sends none, which the server takes as the empty list even
				// though the model marks tagKeys required.
				for _, e := range v {
					query.Add(q, fmt.Sprint(e))
				}
			default:
				query.Add(q, fmt.Sprint(v))
			}
			continue
		}
		for _, unsupported := range []string{"smithy.api#httpHeader", "smithy.api#httpPayload", "smithy.api#httpPrefixHeaders", "smithy.api#httpQueryParams"} {
			if _, ok := m.Traits[unsupported]; ok {
				t.Fatalf("%s.%s: binding %s is not supported by this test", op.name, name, unsupported)
			}
		}
		body[name] = v
	}
	if strings.Contains(path, "{") {
		t.Fatalf("%s: unbound label in %s", op.name, path)
	}
	var payload []byte
	if len(body) > 0 || (op.method != http.MethodGet && op.method != http.MethodDelete) {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	target := baseURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, op.method, target, bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("%s %s: %v", op.method, target, err)
	}
	if payload != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(payload)
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, hreq, hex.EncodeToString(sum[:]), "ivschat", testRegion, time.Now()); err != nil {
		t.Fatalf("sign: %v", err)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatalf("%s %s: %v", op.method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", op.method, target, err)
	}
	out := modelResponse{status: resp.StatusCode, body: string(raw)}
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(raw, &out.err); err != nil {
			t.Errorf("%s %s: error body is not JSON: %q", op.method, target, raw)
		}
		if out.err.Type == "" {
			out.err.Type = resp.Header.Get("x-amzn-ErrorType")
		}
	}
	// The server must stay healthy: no request may end in a server fault.
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s answered %d: %s", op.method, target, resp.StatusCode, raw)
	}
	// Auth runs before validation: a refused signature means the case tested
	// nothing.
	if resp.StatusCode == http.StatusForbidden {
		t.Fatalf("%s %s refused before validation: %s", op.method, target, raw)
	}
	return out
}

// --- the test ---

func TestModelConstraints(t *testing.T) {
	raw, err := os.ReadFile(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != modelSHA256 {
		t.Fatalf("%s has sha256 %x, want %s: the model must be the unmodified upstream file (testdata/README.md)", modelFile, sum, modelSHA256)
	}
	var m smithyModel
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", modelFile, err)
	}

	g := &modelGen{t: t, m: &m}
	ops := map[string]*modelOp{}
	var opNames []string
	for id, s := range m.Shapes {
		if s.Type != "operation" {
			continue
		}
		name := strings.TrimPrefix(id, modelNS)
		binding, ok := trait[smithyHTTP](t, s.Traits, "smithy.api#http")
		if !ok || s.Input == nil {
			t.Fatalf("model: operation %s has no http binding or input", name)
		}
		in := g.shape(s.Input.Target)
		ops[name] = &modelOp{name: name, method: binding.Method, uri: binding.URI, members: in.Members}
		opNames = append(opNames, name)
		for _, mn := range sortedMemberNames(in.Members) {
			mem := in.Members[mn]
			g.walk(name, mn, func(fx fixtures, req map[string]any, f func(any) any) { req[mn] = f(req[mn]) }, mem.Target, mem.Traits, 0)
		}
	}
	sort.Strings(opNames)
	// A broken walker would pass vacuously: the 2020-07-14 model has 17
	// operations, and every one of them has constrained input.
	if len(opNames) != 17 {
		t.Fatalf("model: %d operations, want 17", len(opNames))
	}
	byOp := map[string][]modelCase{}
	for _, c := range g.cases {
		byOp[c.op] = append(byOp[c.op], c)
	}
	for _, name := range opNames {
		if len(byOp[name]) == 0 {
			t.Errorf("no cases generated for %s", name)
		}
	}

	ts := startServer(t, "", func(c *config.Config) {
		// The "just inside" cases of the Create operations really create
		// resources; keep the quotas out of the way.
		c.MaxRooms = 100000
		c.MaxLoggingConfigurations = 100000
	})
	client := ts.client()
	ctx := context.Background()
	newRoom := func(t *testing.T) string {
		out, err := client.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String("model-test")})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		return *out.Arn
	}
	lc, err := client.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{
		Name: aws.String("model-test"),
		DestinationConfiguration: &ivstypes.DestinationConfigurationMemberS3{
			Value: ivstypes.S3DestinationConfiguration{BucketName: aws.String("model-test-bucket")},
		},
	})
	if err != nil {
		t.Fatalf("CreateLoggingConfiguration: %v", err)
	}
	shared := fixtures{roomARN: newRoom(t), lcARN: *lc.Arn}

	t.Logf("%d cases generated from %s", len(g.cases), modelFile)
	for _, opName := range opNames {
		op := ops[opName]
		t.Run(opName, func(t *testing.T) {
			cases := byOp[opName]
			for len(cases) > 0 {
				// Cases of one member are consecutive: group them in a subtest.
				n := 1
				for n < len(cases) && cases[n].label == cases[0].label {
					n++
				}
				group := cases[:n]
				cases = cases[n:]
				t.Run(group[0].label, func(t *testing.T) {
					for _, c := range group {
						t.Run(c.name, func(t *testing.T) {
							fx := shared
							if opName == "TagResource" {
								// Tags merge into the resource's tags, and the
								// 50-tag limit applies to the result: a fresh
								// room keeps one case's tags from pushing the
								// next over the limit.
								fx.roomARN = newRoom(t)
							}
							runModelCase(t, ts.URL, g, op, fx, c)
						})
					}
				})
			}
		})
	}

	// The server must have come through all of it healthy.
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if _, err := client.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: aws.String(shared.roomARN)}); err != nil {
		t.Fatalf("GetRoom after the model cases: %v", err)
	}
}

// baseRequest is a valid request of op: its required members, with the real
// fixtures as identifiers.
func baseRequest(g *modelGen, op *modelOp, fx fixtures) map[string]any {
	req := map[string]any{}
	for _, name := range sortedMemberNames(op.members) {
		if m := op.members[name]; isRequired(m) {
			req[name] = g.valid(fx, m.Target)
		}
	}
	return req
}

func runModelCase(t *testing.T, baseURL string, g *modelGen, op *modelOp, fx fixtures, c modelCase) {
	// Building values may fail the test, which must then be this subtest's
	// (FailNow belongs to the goroutine running the test).
	defer func(parent *testing.T) { g.t = parent }(g.t)
	g.t = t
	req := baseRequest(g, op, fx)
	c.apply(fx, req)
	resp := sendModelRequest(t, baseURL, op, req)
	msg, named := resp.validationOf(c.fields)
	if c.invalid {
		if resp.status != http.StatusBadRequest || !named {
			t.Errorf("want 400 ValidationException naming %s, got %d: %s\nrequest: %s", c.fields[0], resp.status, resp.body, describe(req))
		}
		return
	}
	if !named {
		return
	}
	if c.reference != nil {
		// Opaque member: the boundary value must be refused exactly like a
		// one-character garbage value, i.e. for its content, not its length.
		ref := baseRequest(g, op, fx)
		c.reference(fx, ref)
		refMsg, refNamed := sendModelRequest(t, baseURL, op, ref).validationOf(c.fields)
		if refNamed && refMsg == msg {
			return
		}
	}
	t.Errorf("value within the model's constraints refused: %d: %s\nrequest: %s", resp.status, resp.body, describe(req))
}

// describe renders a request compactly for failure messages.
func describe(req map[string]any) string {
	b, _ := json.Marshal(req)
	s := string(b)
	if utf8.RuneCountInString(s) > 300 {
		return string([]rune(s)[:300]) + "…"
	}
	return s
}
