package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

var testSecret = []byte("s3cr3t")

func newReviewer(t testing.TB, timeout time.Duration) *Reviewer {
	t.Helper()
	r, err := New(Options{Timeout: timeout, WebhookSecret: testSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// webhook starts a real HTTP server that verifies each request's signature,
// decodes it and answers with reply.
func webhook(t testing.TB, reply func(w http.ResponseWriter, r *http.Request, got wireRequest)) (url string, calls *atomic.Int64) {
	t.Helper()
	calls = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := VerifySignature(testSecret, r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" || r.Method != http.MethodPost {
			t.Errorf("got %s with Content-Type %q", r.Method, ct)
		}
		var got wireRequest
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("request body: %v", err)
		}
		reply(w, r, got)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

func answer(s string) func(http.ResponseWriter, *http.Request, wireRequest) {
	return func(w http.ResponseWriter, _ *http.Request, _ wireRequest) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, s)
	}
}

func sampleRequest() Request {
	return Request{
		Content:          "hello <world> & all",
		MessageID:        "WhO6MW6iRdS5",
		RoomARN:          "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6",
		Attributes:       map[string]string{"k": "v"},
		Sender:           Sender{UserID: "u-1", Attributes: map[string]string{"username": "max"}, IP: "203.0.113.7"},
		MaxContentLength: 10,
	}
}

func TestWebhookPayloadExactKeys(t *testing.T) {
	var raw atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		raw.Store(string(b))
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	}))
	defer srv.Close()
	rv := newReviewer(t, time.Second)
	req := sampleRequest()
	req.Attributes, req.Sender.Attributes = nil, nil
	rv.Review(context.Background(), chat.MessageReviewHandler{URI: srv.URL}, req)
	want := `{"Content":"hello <world> & all","MessageId":"WhO6MW6iRdS5","RoomArn":"arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6",` +
		`"Attributes":{},"Sender":{"UserId":"u-1","Attributes":{},"Ip":"203.0.113.7"}}`
	if got := raw.Load(); got != want {
		t.Fatalf("payload\n got: %v\nwant: %s", got, want)
	}
}

func TestWebhookAllowReplaces(t *testing.T) {
	url, _ := webhook(t, func(w http.ResponseWriter, _ *http.Request, got wireRequest) {
		want := wireRequest{Content: "hello <world> & all", MessageID: "WhO6MW6iRdS5",
			RoomARN: "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6", Attributes: map[string]string{"k": "v"},
			Sender: wireSender{UserID: "u-1", Attributes: map[string]string{"username": "max"}, IP: "203.0.113.7"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("handler got %+v, want %+v", got, want)
		}
		io.WriteString(w, `{"ReviewResult":"ALLOW","Content":"h***o","Attributes":{"k":"v2","flag":"1"}}`)
	})
	res := newReviewer(t, time.Second).Review(context.Background(), chat.MessageReviewHandler{URI: url}, sampleRequest())
	want := Result{Allow: true, Content: "h***o", Attributes: map[string]string{"k": "v2", "flag": "1"}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("got %+v, want %+v", res, want)
	}
}

func TestWebhookAllowKeepsOriginals(t *testing.T) {
	for _, body := range []string{`{"ReviewResult":"ALLOW"}`, `{"ReviewResult":"ALLOW","Content":null,"Attributes":null,"Extra":[1]}`} {
		url, _ := webhook(t, answer(body))
		req := sampleRequest()
		res := newReviewer(t, time.Second).Review(context.Background(), chat.MessageReviewHandler{URI: url}, req)
		if !res.Allow || res.Fallback || res.Content != req.Content || !reflect.DeepEqual(res.Attributes, req.Attributes) {
			t.Fatalf("%s: got %+v", body, res)
		}
	}
	// Empty replacements are replacements, not absences.
	url, _ := webhook(t, answer(`{"ReviewResult":"ALLOW","Content":"","Attributes":{}}`))
	res := newReviewer(t, time.Second).Review(context.Background(), chat.MessageReviewHandler{URI: url}, sampleRequest())
	if !res.Allow || res.Content != "" || res.Attributes == nil || len(res.Attributes) != 0 {
		t.Fatalf("got %+v", res)
	}
}

func TestWebhookDeny(t *testing.T) {
	url, _ := webhook(t, answer(`{"ReviewResult":"DENY","Content":"ignored"}`))
	rv := newReviewer(t, time.Second)
	// A DENY answer is the handler's decision even with an ALLOW fallback.
	res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: url, FallbackResult: chat.FallbackAllow}, sampleRequest())
	if res.Allow || res.Fallback {
		t.Fatalf("got %+v, want a DENY from the handler", res)
	}
	if s := rv.Stats(); s.Denied != 1 || s.Invocations != 1 || s.Allowed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestWebhookFallbacks(t *testing.T) {
	cases := []struct {
		name   string
		reply  func(http.ResponseWriter, *http.Request, wireRequest)
		reason string
	}{
		{"slow", func(w http.ResponseWriter, r *http.Request, _ wireRequest) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			io.WriteString(w, `{"ReviewResult":"ALLOW","Content":"late"}`)
		}, ReasonTimeout},
		{"500", func(w http.ResponseWriter, _ *http.Request, _ wireRequest) {
			http.Error(w, `{"ReviewResult":"ALLOW","Content":"x"}`, http.StatusInternalServerError)
		}, ReasonError},
		{"redirect", func(w http.ResponseWriter, r *http.Request, _ wireRequest) {
			http.Redirect(w, r, "http://example.invalid/", http.StatusTemporaryRedirect)
		}, ReasonError},
		{"garbage", answer(`<html>oops</html>`), ReasonInvalid},
		{"empty body", answer(``), ReasonInvalid},
		{"two values", answer(`{"ReviewResult":"ALLOW"}{"ReviewResult":"ALLOW"}`), ReasonInvalid},
		{"unknown result", answer(`{"ReviewResult":"MAYBE"}`), ReasonInvalid},
		{"lower-case result", answer(`{"ReviewResult":"allow"}`), ReasonInvalid},
		{"missing result", answer(`{"Content":"x"}`), ReasonInvalid},
		{"null", answer(`null`), ReasonInvalid},
		{"result not a string", answer(`{"ReviewResult":true}`), ReasonInvalid},
		{"content not a string", answer(`{"ReviewResult":"ALLOW","Content":5}`), ReasonInvalid},
		{"attribute not a string", answer(`{"ReviewResult":"ALLOW","Attributes":{"a":1}}`), ReasonInvalid},
		{"attributes not an object", answer(`{"ReviewResult":"ALLOW","Attributes":["a"]}`), ReasonInvalid},
		{"content too long", answer(`{"ReviewResult":"ALLOW","Content":"ééééééééééé"}`), ReasonInvalid},
		{"huge answer", answer(`{"ReviewResult":"ALLOW","Pad":"` + strings.Repeat("x", maxResponseBytes) + `"}`), ReasonInvalid},
	}
	for _, tc := range cases {
		url, _ := webhook(t, tc.reply)
		for _, fb := range []string{chat.FallbackAllow, chat.FallbackDeny, ""} {
			t.Run(tc.name+"/"+orDefault(fb), func(t *testing.T) {
				t.Parallel()
				rv := newReviewer(t, 100*time.Millisecond)
				req := sampleRequest()
				start := time.Now()
				res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: url, FallbackResult: fb}, req)
				if d := time.Since(start); d > time.Second {
					t.Errorf("review took %v with a 100ms timeout", d)
				}
				var want Result
				if fb == chat.FallbackDeny {
					want = Result{Fallback: true, Reason: tc.reason}
				} else {
					want = Result{Allow: true, Content: req.Content, Attributes: req.Attributes, Fallback: true, Reason: tc.reason}
				}
				if !reflect.DeepEqual(res, want) {
					t.Fatalf("got %+v, want %+v", res, want)
				}
				s := rv.Stats()
				var n uint64
				switch tc.reason {
				case ReasonTimeout:
					n = s.Fallbacks.Timeout
				case ReasonError:
					n = s.Fallbacks.Error
				case ReasonInvalid:
					n = s.Fallbacks.Invalid
				}
				if n != 1 || s.Invocations != 1 {
					t.Fatalf("stats %+v", s)
				}
			})
		}
	}
}

func orDefault(fb string) string {
	if fb == "" {
		return "default"
	}
	return fb
}

func TestUnsupportedURI(t *testing.T) {
	rv := newReviewer(t, time.Second)
	for _, uri := range []string{"", "ftp://x/", "arn:aws:s3:::bucket", "arn:aws:lambda:us-east-1:123456789012:layer:x"} {
		res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: uri, FallbackResult: chat.FallbackDeny}, sampleRequest())
		if res.Allow || !res.Fallback || res.Reason != ReasonError {
			t.Errorf("%q: got %+v", uri, res)
		}
	}
}

func TestCallerContextCanceled(t *testing.T) {
	url, calls := webhook(t, answer(`{"ReviewResult":"ALLOW"}`))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := newReviewer(t, time.Second).Review(ctx, chat.MessageReviewHandler{URI: url, FallbackResult: chat.FallbackDeny}, sampleRequest())
	if res.Allow || !res.Fallback || res.Reason != ReasonError || calls.Load() != 0 {
		t.Fatalf("got %+v after %d calls", res, calls.Load())
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"Content":"hi"}`)
	now := time.Unix(1700000000, 0)
	h := Sign(testSecret, now, body)
	if !strings.HasPrefix(h, "t=1700000000,v1=") || len(h) != len("t=1700000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if err := VerifySignature(testSecret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// A second v1 (key rotation) and spaces are accepted.
	if err := VerifySignature(testSecret, "v1=00, "+h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"tampered body", testSecret, h, `{"Content":"hi!"}`, now, ErrSignatureMismatch},
		{"wrong secret", []byte("other"), h, string(body), now, ErrSignatureMismatch},
		{"tampered timestamp", testSecret, strings.Replace(h, "t=1700000000", "t=1700000001", 1), string(body), now, ErrSignatureMismatch},
		{"too old", testSecret, h, string(body), now.Add(6 * time.Minute), ErrSignatureTimestamp},
		{"from the future", testSecret, h, string(body), now.Add(-6 * time.Minute), ErrSignatureTimestamp},
		{"missing", testSecret, "", string(body), now, ErrSignatureMissing},
		{"no v1", testSecret, "t=1700000000", string(body), now, ErrSignatureMissing},
		{"bad t", testSecret, "t=x,v1=" + h[len("t=1700000000,v1="):], string(body), now, ErrSignatureMissing},
	} {
		if err := VerifySignature(tc.secret, tc.header, []byte(tc.body), tc.now, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestWebhookTamperedBodyFailsVerification(t *testing.T) {
	// The receiver's view: the header the server sent does not cover a
	// body changed on the way.
	var header atomic.Value
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		header.Store(r.Header.Get(SignatureHeader))
		body.Store(b)
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	}))
	defer srv.Close()
	newReviewer(t, time.Second).Review(context.Background(), chat.MessageReviewHandler{URI: srv.URL}, sampleRequest())
	b := body.Load().([]byte)
	h := header.Load().(string)
	if err := VerifySignature(testSecret, h, b, time.Now(), time.Minute); err != nil {
		t.Fatalf("untouched request: %v", err)
	}
	tampered := []byte(strings.Replace(string(b), "hello", "HELLO", 1))
	if err := VerifySignature(testSecret, h, tampered, time.Now(), time.Minute); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("tampered body: got %v", err)
	}
}

func TestNoSecretNoSignature(t *testing.T) {
	var sig atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig.Store(r.Header.Values(SignatureHeader))
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	}))
	defer srv.Close()
	rv, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: srv.URL}, sampleRequest()); res.Fallback {
		t.Fatalf("got %+v", res)
	}
	if v := sig.Load().([]string); len(v) != 0 {
		t.Fatalf("signature header without a secret: %q", v)
	}
}

func TestStatsLatency(t *testing.T) {
	url, _ := webhook(t, answer(`{"ReviewResult":"ALLOW"}`))
	rv := newReviewer(t, time.Second)
	for range 3 {
		rv.Review(context.Background(), chat.MessageReviewHandler{URI: url}, sampleRequest())
	}
	s := rv.Stats()
	h := s.Latency
	if s.Invocations != 3 || s.Allowed != 3 || h.Count != 3 || h.Sum <= 0 || len(h.Counts) != len(h.Bounds) {
		t.Fatalf("stats %+v", s)
	}
	if !slices.IsSorted(h.Counts) || h.Counts[len(h.Counts)-1] > h.Count {
		t.Fatalf("histogram not cumulative: %+v", h)
	}
}

// A handler's replacement attributes obey the 1 KB rule of client
// attributes (UTF-8 bytes of keys and values): over it, the answer is
// invalid and the room's fallback applies, so a handler cannot broadcast
// what no client could send.
func TestWebhookAttributeLimit(t *testing.T) {
	attrs := func(n int, fill string) string {
		b, _ := json.Marshal(map[string]string{"k": strings.Repeat(fill, n)})
		return `{"ReviewResult":"ALLOW","Attributes":` + string(b) + `}`
	}
	for _, tc := range []struct {
		name   string
		answer string
		valid  bool
	}{
		{"1 KB exactly", attrs(chat.MaxAttributesBytes-1, "x"), true},
		{"one byte over", attrs(chat.MaxAttributesBytes, "x"), false},
		{"2 KB", attrs(2048, "x"), false},
		// 342 × 3-byte "€" + "k" = 1027 bytes, though only 343 characters.
		{"counted in UTF-8 bytes", attrs(342, "€"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := webhook(t, answer(tc.answer))
			for _, fb := range []string{chat.FallbackAllow, chat.FallbackDeny} {
				rv := newReviewer(t, time.Second)
				req := sampleRequest()
				res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: url, FallbackResult: fb}, req)
				switch {
				case tc.valid:
					if !res.Allow || res.Fallback || len(res.Attributes["k"]) != chat.MaxAttributesBytes-1 {
						t.Fatalf("%s: got %s, want the handler's attributes", fb, summary(res))
					}
				case fb == chat.FallbackDeny:
					if res.Allow || !res.Fallback || res.Reason != ReasonInvalid {
						t.Fatalf("%s: got %s, want the DENY fallback", fb, summary(res))
					}
				default:
					if !res.Allow || !res.Fallback || res.Reason != ReasonInvalid || !reflect.DeepEqual(res.Attributes, req.Attributes) {
						t.Fatalf("%s: got %s, want the original attributes", fb, summary(res))
					}
				}
				if want := map[bool]uint64{true: 0, false: 1}[tc.valid]; rv.Stats().Fallbacks.Invalid != want {
					t.Fatalf("%s: invalid-answer fallbacks = %d, want %d", fb, rv.Stats().Fallbacks.Invalid, want)
				}
			}
		})
	}
}

// summary describes a Result without printing kilobytes of attributes.
func summary(res Result) string {
	return fmt.Sprintf("{Allow:%v Fallback:%v Reason:%q Attributes:%d bytes}", res.Allow, res.Fallback, res.Reason, chat.AttributesBytes(res.Attributes))
}
