package review

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/egress"
)

// fakeDNS is an in-process DNS server: the resolver it returns talks to it
// over net.Pipe, so no query leaves the test. answer is asked, for each A or
// AAAA query, for the addresses of a name (called once per query, so it can
// change its mind as a rebinding DNS server does).
func fakeDNS(t testing.TB, answer func(name string) []netip.Addr) *net.Resolver {
	t.Helper()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, answer)
		return client, nil
	}}
}

// serveDNS answers queries in the stream framing (a two-byte length before
// each message) that the Go resolver uses on a connection that is not a
// net.PacketConn.
func serveDNS(c net.Conn, answer func(name string) []netip.Addr) {
	defer c.Close()
	for {
		var n uint16
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		q := make([]byte, n)
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		// The question: labels up to a zero byte, then type and class.
		i := 12
		var labels []string
		for i < len(q) && q[i] != 0 {
			l := int(q[i])
			labels = append(labels, string(q[i+1:i+1+l]))
			i += 1 + l
		}
		question := q[12 : i+5]
		qtype := binary.BigEndian.Uint16(q[i+1:])
		var rrs []byte
		var count uint16
		for _, a := range answer(strings.Join(labels, ".")) {
			if (qtype == 1) != a.Is4() || (qtype != 1 && qtype != 28) {
				continue
			}
			// Name (a pointer to the question's), type, class IN, TTL 0, data.
			rrs = append(rrs, 0xc0, 12, byte(qtype>>8), byte(qtype), 0, 1, 0, 0, 0, 0)
			rrs = binary.BigEndian.AppendUint16(rrs, uint16(a.BitLen()/8))
			rrs = append(rrs, a.AsSlice()...)
			count++
		}
		resp := []byte{q[0], q[1], 0x81, 0x80, 0, 1, byte(count >> 8), byte(count), 0, 0, 0, 0}
		resp = append(append(resp, question...), rrs...)
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...)); err != nil {
			return
		}
	}
}

func targetReviewer(t testing.TB, allow string, resolver *net.Resolver, log *slog.Logger) *Reviewer {
	t.Helper()
	var l egress.AllowList
	if err := l.Set(allow); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := New(Options{Timeout: 2 * time.Second, WebhookSecret: testSecret, WebhookAllow: l, Resolver: resolver, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// closingWebhook answers ALLOW and closes every connection, so each review
// dials (and resolves) again.
func closingWebhook(t testing.TB) (port string, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Connection", "close")
		io.WriteString(w, `{"ReviewResult":"ALLOW","Content":"reviewed"}`)
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port, calls
}

func wantRefused(t *testing.T, rv *Reviewer, uri, fallback string) {
	t.Helper()
	req := sampleRequest()
	before := rv.Stats().Fallbacks.TargetRefused
	res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: uri, FallbackResult: fallback}, req)
	want := Result{Fallback: true, Reason: ReasonTargetRefused}
	if fallback != chat.FallbackDeny {
		want = Result{Allow: true, Content: req.Content, Attributes: req.Attributes, Fallback: true, Reason: ReasonTargetRefused}
	}
	if res.Allow != want.Allow || res.Content != want.Content || res.Fallback != want.Fallback || res.Reason != want.Reason {
		t.Errorf("%s (fallback %s): got %+v, want %+v", uri, orDefault(fallback), res, want)
	}
	if got := rv.Stats().Fallbacks.TargetRefused; got != before+1 {
		t.Errorf("%s: target_refused fallbacks went from %d to %d", uri, before, got)
	}
}

// A host name that resolves to a link-local address is refused when it is
// dialed, whatever the allow-list says; the same webhook under a name that
// resolves to loopback is called.
func TestWebhookNameResolvingToLinkLocalRefused(t *testing.T) {
	port, calls := closingWebhook(t)
	dns := fakeDNS(t, func(name string) []netip.Addr {
		switch name {
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		case "metadata6.test":
			return []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}
		case "mapped.test":
			return []netip.Addr{netip.MustParseAddr("::ffff:169.254.169.254")}
		case "hooks.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	for _, allow := range []string{"", "metadata.test,metadata6.test,mapped.test,hooks.test"} {
		rv := targetReviewer(t, allow, dns, nil)
		for _, name := range []string{"metadata.test", "metadata6.test", "mapped.test"} {
			uri := "http://" + name + ":" + port + "/latest/meta-data/"
			if err := rv.CheckURI(uri); err != nil {
				t.Fatalf("CheckURI(%s) = %v: a name is judged when dialed", uri, err)
			}
			for _, fb := range []string{chat.FallbackAllow, chat.FallbackDeny} {
				wantRefused(t, rv, uri, fb)
			}
		}
		res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: "http://hooks.test:" + port + "/"}, sampleRequest())
		if !res.Allow || res.Fallback || res.Content != "reviewed" {
			t.Errorf("allow-list %q: hooks.test (loopback) got %+v", allow, res)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("the webhook was called %d times, want 2 (hooks.test only)", n)
	}
}

// DNS rebinding: a name that resolved to an allowed address when the room
// was created, and on the first call, cannot later point the server at the
// metadata service.
func TestWebhookRebindingRefused(t *testing.T) {
	port, calls := closingWebhook(t)
	var rebound atomic.Bool
	dns := fakeDNS(t, func(string) []netip.Addr {
		if rebound.Load() {
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	})
	rv := targetReviewer(t, "", dns, nil)
	uri := "http://rebind.test:" + port + "/"
	if err := rv.CheckURI(uri); err != nil {
		t.Fatal(err)
	}
	if res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: uri}, sampleRequest()); res.Fallback || res.Content != "reviewed" {
		t.Fatalf("first review: %+v", res)
	}
	rebound.Store(true)
	wantRefused(t, rv, uri, chat.FallbackDeny)
	if calls.Load() != 1 {
		t.Fatalf("webhook called %d times, want 1", calls.Load())
	}
}

// IP literals are refused before any connection; with an allow-list, a
// loopback webhook not on it is refused too.
func TestWebhookLiteralTargetsRefused(t *testing.T) {
	url, calls := webhook(t, answer(`{"ReviewResult":"ALLOW"}`))
	rv := targetReviewer(t, "", nil, nil)
	for _, uri := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://169.254.170.2/v2/credentials",
		"http://[::ffff:169.254.169.254]/",
		"http://[fd00:ec2::254]/",
		"https://[fe80::1%25eth0]:8443/",
		"http://2852039166/",
	} {
		if err := rv.CheckURI(uri); err == nil {
			t.Errorf("CheckURI(%s) accepted it", uri)
		}
		wantRefused(t, rv, uri, "")
	}
	restricted := targetReviewer(t, "hooks.example.com,10.0.0.0/8", nil, nil)
	err := restricted.CheckURI(url)
	var refused *egress.RefusedError
	if !errors.As(err, &refused) || refused.Reason != egress.ReasonNotAllowed {
		t.Errorf("CheckURI(%s) with an allow-list = %v", url, err)
	}
	wantRefused(t, restricted, url, chat.FallbackDeny)
	if calls.Load() != 0 {
		t.Fatalf("a refused webhook was called %d times", calls.Load())
	}
	// Loopback is allowed by default (local development).
	if res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: url}, sampleRequest()); res.Fallback {
		t.Fatalf("loopback webhook: %+v", res)
	}
}

func TestCheckURI(t *testing.T) {
	rv := targetReviewer(t, "", nil, nil)
	for uri, ok := range map[string]bool{
		"arn:aws:lambda:us-west-2:123456789012:function:f": true,
		"http://127.0.0.1:9000/review":                     true,
		"https://hooks.example.com/review":                 true,
		"http://169.254.169.254/":                          false,
		"http://user@169.254.169.254/":                     false,
		"http://hooks.example.com@169.254.169.254/":        false,
		"http://[::1":  false,
		"http:///path": false,
	} {
		if err := rv.CheckURI(uri); (err == nil) != ok {
			t.Errorf("CheckURI(%s) = %v", uri, err)
		}
	}
}

// A refused target is logged at Warn with its own rate limit, so a failing
// handler elsewhere (logged just before) does not hide it.
func TestTargetRefusedLoggedAtWarn(t *testing.T) {
	var mu sync.Mutex
	var records []slog.Record
	log := slog.New(handlerFunc(func(r slog.Record) {
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}))
	rv := targetReviewer(t, "", nil, log)
	rv.Review(context.Background(), chat.MessageReviewHandler{URI: "ftp://unsupported/"}, sampleRequest())
	rv.Review(context.Background(), chat.MessageReviewHandler{URI: "http://169.254.169.254/"}, sampleRequest())
	mu.Lock()
	defer mu.Unlock()
	if len(records) != 2 {
		t.Fatalf("%d log records, want 2", len(records))
	}
	r := records[1]
	var reason, uri string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "reason":
			reason = a.Value.String()
		case "uri":
			uri = a.Value.String()
		}
		return true
	})
	if r.Level != slog.LevelWarn || reason != ReasonTargetRefused || uri != "http://169.254.169.254/" {
		t.Fatalf("refusal logged at %v with reason %q, uri %q", r.Level, reason, uri)
	}
}

type handlerFunc func(slog.Record)

func (h handlerFunc) Enabled(context.Context, slog.Level) bool      { return true }
func (h handlerFunc) Handle(_ context.Context, r slog.Record) error { h(r); return nil }
func (h handlerFunc) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h handlerFunc) WithGroup(string) slog.Handler                 { return h }
