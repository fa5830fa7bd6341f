package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/review"
)

// The assembled server signs webhook review requests with the secret it keeps
// in the data dir, and delivers what the handler decides.
func TestReviewWebhookEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	secret, err := os.ReadFile(filepath.Join(dir, "review-webhook-secret"))
	if err != nil {
		t.Fatalf("no generated webhook secret: %v", err)
	}
	verified := make(chan error, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verified <- review.VerifySignature([]byte(strings.TrimSpace(string(secret))), r.Header.Get(review.SignatureHeader), body, time.Now(), 5*time.Minute)
		var in struct{ Content string }
		json.Unmarshal(body, &in)
		if strings.Contains(in.Content, "spoiler") {
			json.NewEncoder(w).Encode(map[string]string{"ReviewResult": "DENY"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ReviewResult": "ALLOW", "Content": strings.ToUpper(in.Content), "Attributes": map[string]string{"reviewed": "yes"}})
	}))
	defer hook.Close()

	c := ts.client()
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(hook.URL + "/review")}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"),
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, ts.URL, *tok.Token)
	defer conn.Close()

	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"hello"}`)
	msg := readFrame(t, conn)
	if msg["Type"] != "MESSAGE" || msg["Content"] != "HELLO" || msg["RequestId"] != "r1" || msg["Attributes"].(map[string]any)["reviewed"] != "yes" {
		t.Errorf("reviewed message = %v", msg)
	}
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r2","Content":"a spoiler"}`)
	denied := readFrame(t, conn)
	if denied["Type"] != "ERROR" || denied["ErrorCode"] != float64(406) || denied["RequestId"] != "r2" {
		t.Errorf("denied message = %v", denied)
	}
	for range 2 {
		if err := <-verified; err != nil {
			t.Errorf("webhook signature does not verify: %v", err)
		}
	}
}

func send(t *testing.T, conn net.Conn, frame string) {
	t.Helper()
	if err := wsutil.WriteClientText(conn, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads the next text frame as JSON, answering nothing else.
func readFrame(t *testing.T, conn net.Conn) map[string]any {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	for {
		data, op, err := wsutil.ReadServerData(conn)
		if err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		if op != ws.OpText {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		return m
	}
}

// Behind a trusted proxy, review handlers see the client's address from
// X-Forwarded-For; without the proxy being trusted the header is ignored.
func TestReviewSenderIPBehindProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted string
		want    string
	}{{"trusted", "127.0.0.1", "198.51.100.7"}, {"not trusted", "", "127.0.0.1"}} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan string, 1)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var in struct{ Sender struct{ Ip string } }
				json.NewDecoder(r.Body).Decode(&in)
				seen <- in.Sender.Ip
				io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
			}))
			defer hook.Close()
			ts := startServer(t, "", func(c *config.Config) {
				if tc.trusted != "" {
					c.TrustedProxies.Set(tc.trusted)
				}
			})
			c := ts.client()
			room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(hook.URL)}})
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"),
				Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d := ws.Dialer{Protocols: []string{*tok.Token}, Header: ws.HandshakeHeaderHTTP(http.Header{"X-Forwarded-For": {"198.51.100.7"}})}
			conn, _, _, err := d.Dial(ctx, strings.Replace(ts.URL, "http://", "ws://", 1)+"/")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			send(t, conn, `{"Action":"SEND_MESSAGE","Content":"hi"}`)
			select {
			case ip := <-seen:
				if ip != tc.want {
					t.Errorf("Sender.Ip = %q, want %q", ip, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the review handler was not called")
			}
		})
	}
}

// A review handler cannot broadcast attributes no client could send: an ALLOW
// with 2 KB of attributes is an invalid answer, so the room's fallback
// decides — viewers see the original message (ALLOW) or the sender gets
// ERROR 406 (DENY) — and the invalid-answer fallback is counted.
func TestReviewOversizedAttributesApplyFallback(t *testing.T) {
	huge := map[string]string{"flair": strings.Repeat("x", 2048)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"ReviewResult": "ALLOW", "Content": "rewritten", "Attributes": huge})
	}))
	defer hook.Close()
	ts := startServer(t, "", nil)
	c := ts.client()

	join := func(room *ivschat.CreateRoomOutput, user string, caps ...types.ChatTokenCapability) net.Conn {
		t.Helper()
		tok, err := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String(user), Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		conn := dialChat(t, ts.URL, *tok.Token)
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	for _, fallback := range []types.FallbackResult{types.FallbackResultAllow, types.FallbackResultDeny} {
		t.Run(string(fallback), func(t *testing.T) {
			room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{
				Uri: aws.String(hook.URL + "/review"), FallbackResult: fallback}})
			if err != nil {
				t.Fatal(err)
			}
			viewer := join(room, "viewer")
			sender := join(room, "sender", types.ChatTokenCapabilitySendMessage)
			send(t, sender, `{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"hello","Attributes":{"a":"b"}}`)

			if fallback == types.FallbackResultDeny {
				if f := readFrame(t, sender); f["Type"] != "ERROR" || f["ErrorCode"] != float64(406) || f["RequestId"] != "r1" {
					t.Fatalf("sender got Type=%v ErrorCode=%v RequestId=%v, want ERROR 406", f["Type"], f["ErrorCode"], f["RequestId"])
				}
				// The viewer's next frame is this event: the message never
				// reached it.
				if _, err := c.SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("after")}); err != nil {
					t.Fatal(err)
				}
				if f := readFrame(t, viewer); f["Type"] != "EVENT" || f["EventName"] != "after" {
					t.Fatalf("viewer got Type=%v EventName=%v, want only the later event", f["Type"], f["EventName"])
				}
				return
			}
			for name, conn := range map[string]net.Conn{"viewer": viewer, "sender": sender} {
				f := readFrame(t, conn)
				attrs, _ := f["Attributes"].(map[string]any)
				if f["Type"] != "MESSAGE" || f["Content"] != "hello" || len(attrs) != 1 || attrs["a"] != "b" {
					t.Errorf("%s got Type=%v Content=%v with %d attributes, want the original message", name, f["Type"], f["Content"], len(attrs))
				}
			}
		})
	}
	if body := scrape(t, ts); !strings.Contains(body, `ivschatd_review_fallbacks_total{reason="invalid"} 2`) {
		t.Errorf("invalid-answer fallbacks not counted:\n%s", grepLines(body, "ivschatd_review_fallbacks_total"))
	}
}

// scrape returns the server's /metrics page.
func scrape(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// wantURIRefused checks that err is a ValidationException whose fieldList
// names messageReviewHandler.uri with a message containing why.
func wantURIRefused(t *testing.T, err error, why string) {
	t.Helper()
	ve := asError[*types.ValidationException](t, err)
	if len(ve.FieldList) != 1 || aws.ToString(ve.FieldList[0].Name) != "messageReviewHandler.uri" ||
		!strings.Contains(aws.ToString(ve.FieldList[0].Message), why) {
		var fields []string
		for _, f := range ve.FieldList {
			fields = append(fields, aws.ToString(f.Name)+": "+aws.ToString(f.Message))
		}
		t.Fatalf("fieldList = %q, want messageReviewHandler.uri saying %q", fields, why)
	}
}

// A webhook URI aimed at the cloud metadata service is refused by CreateRoom
// and UpdateRoom, whatever the configuration; a loopback webhook works by
// default.
func TestReviewWebhookLinkLocalRefused(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	for _, uri := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[fe80::1]:8080/review",
	} {
		_, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(uri)}})
		wantURIRefused(t, err, "link-local")
	}
	room := createRoom(t, c, "r")
	_, err := c.UpdateRoom(ctxT(t), &ivschat.UpdateRoomInput{Identifier: room.Arn,
		MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String("http://169.254.169.254/latest/meta-data/")}})
	wantURIRefused(t, err, "link-local")
	if got, err := c.GetRoom(ctxT(t), &ivschat.GetRoomInput{Identifier: room.Arn}); err != nil || got.MessageReviewHandler != nil {
		t.Fatalf("the refused handler was stored: %+v, %v", got, err)
	}
	hook := upperCaseHook(t)
	if _, err := c.UpdateRoom(ctxT(t), &ivschat.UpdateRoomInput{Identifier: room.Arn,
		MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(hook)}}); err != nil {
		t.Fatalf("loopback webhook refused by default: %v", err)
	}
	wantReviewed(t, ts, room.Arn)
}

// upperCaseHook starts a loopback webhook that upper-cases what it reviews.
func upperCaseHook(t *testing.T) string {
	t.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Content string }
		json.NewDecoder(r.Body).Decode(&in)
		json.NewEncoder(w).Encode(map[string]string{"ReviewResult": "ALLOW", "Content": strings.ToUpper(in.Content)})
	}))
	t.Cleanup(hook.Close)
	return hook.URL + "/review"
}

// wantReviewed sends "hello" to the room and checks that the webhook's
// answer ("HELLO") is delivered.
func wantReviewed(t *testing.T, ts *testServer, roomArn *string) {
	t.Helper()
	conn := joinRoom(t, ts, roomArn)
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"hello"}`)
	if f := readFrame(t, conn); f["Type"] != "MESSAGE" || f["Content"] != "HELLO" {
		t.Fatalf("got %v, want the reviewed message", f)
	}
}

func joinRoom(t *testing.T, ts *testServer, roomArn *string) net.Conn {
	t.Helper()
	tok, err := ts.client().CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: roomArn, UserId: aws.String("u"),
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, ts.URL, *tok.Token)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// With --review-webhook-allow, CreateRoom refuses webhook hosts outside the
// list and a listed loopback webhook works. A room whose webhook the list no
// longer allows (created before the operator set it) gets its fallback when
// a message is sent, the webhook is not called, and the refusal is counted.
func TestReviewWebhookAllowList(t *testing.T) {
	dir := t.TempDir()
	hook := upperCaseHook(t)
	// Another loopback address, which the list below leaves out.
	lis, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	var unlistedCalls atomic.Int64
	unlisted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unlistedCalls.Add(1)
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	}))
	unlisted.Listener.Close()
	unlisted.Listener = lis
	unlisted.Start()
	defer unlisted.Close()

	ts := startServer(t, dir, nil)
	before, err := ts.client().CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{
		Uri: aws.String(unlisted.URL + "/review"), FallbackResult: types.FallbackResultDeny}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Stop()

	ts = startServer(t, dir, func(c *config.Config) {
		if err := c.ReviewWebhookAllow.Set("hooks.example.com,127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	})
	defer ts.Stop()
	c := ts.client()
	for _, uri := range []string{"https://other.example.com/review", "http://10.1.2.3/review", unlisted.URL + "/review"} {
		_, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(uri)}})
		wantURIRefused(t, err, "allow-list")
	}
	if _, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String("https://hooks.example.com/review")}}); err != nil {
		t.Errorf("listed host refused: %v", err)
	}
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(hook)}})
	if err != nil {
		t.Fatalf("listed loopback webhook refused: %v", err)
	}
	wantReviewed(t, ts, room.Arn)

	conn := joinRoom(t, ts, before.Arn)
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"hello"}`)
	if f := readFrame(t, conn); f["Type"] != "ERROR" || f["ErrorCode"] != float64(406) {
		t.Fatalf("got %v, want the DENY fallback (ERROR 406)", f)
	}
	if n := unlistedCalls.Load(); n != 0 {
		t.Errorf("the refused webhook was called %d times", n)
	}
	if body := scrape(t, ts); !strings.Contains(body, `ivschatd_review_fallbacks_total{reason="target_refused"} 1`) {
		t.Errorf("refusal not counted:\n%s", grepLines(body, "ivschatd_review_fallbacks_total"))
	}
}
