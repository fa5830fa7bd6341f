package server

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/token"
)

// With no key configured, the server generates one on first start, stores it
// with mode 0600, keeps it across restarts, and still refuses unsigned calls.
func TestGeneratedCredentials(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, func(c *config.Config) { c.AccessKeys = nil })
	path := filepath.Join(dir, "credentials.json")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no generated credentials: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v, want 0600", info.Mode().Perm())
	}
	var key config.AccessKey
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &key); err != nil || key.AccessKeyID == "" || len(key.SecretAccessKey) < 32 {
		t.Fatalf("credentials file %s: %v", data, err)
	}
	if _, err := ts.client(key.AccessKeyID, key.SecretAccessKey).CreateRoom(ctxT(t), &ivschat.CreateRoomInput{}); err != nil {
		t.Errorf("generated key does not work: %v", err)
	}
	if we := do(t, mustRequest(t, "POST", ts.URL+"/ListRooms", "{}")); we.Status != http.StatusForbidden || we.Type != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned request: %d %s", we.Status, we.Type)
	}
	ts.Stop()
	ts = startServer(t, dir, func(c *config.Config) { c.AccessKeys = nil })
	if _, err := ts.client(key.AccessKeyID, key.SecretAccessKey).ListRooms(ctxT(t), &ivschat.ListRoomsInput{}); err != nil {
		t.Errorf("generated key changed across restart: %v", err)
	}
}

func TestInsecureModeAcceptsUnsignedRequests(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.AccessKeys = nil; c.Insecure = true })
	if we := do(t, mustRequest(t, "POST", ts.URL+"/CreateRoom", `{"name":"open"}`)); we.Status != http.StatusOK {
		t.Fatalf("unsigned CreateRoom in insecure mode: %d %s %s", we.Status, we.Type, we.Message)
	}
	if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "credentials.json")); !os.IsNotExist(err) {
		t.Errorf("insecure mode generated credentials: %v", err)
	}
}

func TestCORS(t *testing.T) {
	ts := startServer(t, "", nil)
	pre := mustRequest(t, "OPTIONS", ts.URL+"/CreateChatToken", "")
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-amz-date,x-amz-user-agent,amz-sdk-invocation-id,amz-sdk-request,x-amz-content-sha256")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "x-amz-date") {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
	// The actual (signed) call exposes the headers the SDK reads.
	req := signedRequest(t, ts, "POST", "/GetRoom", []byte(`{"identifier":"arn:aws:ivschat:us-west-2:123456789012:room/AAAAAAAAAAAA"}`), testAccessKey, testSecretKey, timeNow())
	req.Header.Set("Origin", "https://app.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expose := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(expose, "x-amzn-errortype") || !strings.Contains(expose, "x-amzn-requestid") {
		t.Errorf("CORS headers on a response: %v", resp.Header)
	}
}

// Two nodes on one PostgreSQL database and one token key ring behave as one
// service: what one creates the other serves, and a token minted by one opens
// a connection on the other.
func TestTwoNodesSharePostgres(t *testing.T) {
	url := os.Getenv("IVSCHATD_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL not set; skipping the PostgreSQL cluster test")
	}
	schema := freshSchema(t, url)
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	node := func() *testServer {
		return startServer(t, "", func(c *config.Config) {
			c.PostgresURL = withSearchPath(url, schema)
			c.TokenKeys = []string{key.SecretString()}
		})
	}
	a, b := node(), node()
	room, err := a.client().CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Name: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.client().GetRoom(ctxT(t), &ivschat.GetRoomInput{Identifier: room.Arn})
	if err != nil || aws.ToString(got.Name) != "shared" {
		t.Fatalf("node b GetRoom: %v %+v", err, got)
	}
	tok, err := a.client().CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, b.URL, *tok.Token)
	conn.Close()
}

func TestMetricsEndpoint(t *testing.T) {
	ts := startServer(t, "", nil)
	createRoom(t, ts.client(), "m")
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`ivschatd_api_requests_total{operation="CreateRoom",status="200"} 1`,
		"ivschatd_messaging_connections 0",
		"ivschatd_messaging_slow_consumer_disconnects_total 0",
		`ivschatd_chatlog_route_lookup_failures_total{outcome="refused"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A client connection that never sends a request (a pre-dialed keep-alive
// slot) must not turn a graceful shutdown into a failure: when the bound
// passes, the server closes what is left and stops cleanly.
func TestShutdownWithUnusedConnection(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.ShutdownTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	ts.Stop() // fails the test if Run returns an error
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a 500ms bound", took)
	}
}

// With --messaging-listen, chat connections are served on their own address,
// and that address serves nothing else but /healthz: no control plane (even
// correctly signed) and no metrics. The main listener keeps serving both.
func TestSeparateMessagingListener(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.MessagingListen = "127.0.0.1:0" })
	if ts.messagingURL == "" {
		t.Fatal("no messaging address")
	}
	c := ts.client()
	room := createRoom(t, c, "split")
	tok, err := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, ts.messagingURL, *tok.Token)
	conn.Close()

	onMessaging := ivschat.New(ivschat.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(ts.messagingURL),
		Credentials:      credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		RetryMaxAttempts: 1,
	})
	name := uniqueName("via-messaging")
	_, err = onMessaging.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Name: aws.String(name)})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotFound {
		t.Errorf("signed CreateRoom on the messaging listener: %v, want 404", err)
	}
	out, err := c.ListRooms(ctxT(t), &ivschat.ListRoomsInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rooms) != 0 {
		t.Errorf("%d rooms created by a CreateRoom on the messaging listener, want none", len(out.Rooms))
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/metrics", "/ListRooms", "/tags/" + url.PathEscape(*room.Arn), "/"} {
		if status, body := get(ts.messagingURL + path); status != http.StatusNotFound || len(body) > 200 {
			t.Errorf("GET %s on the messaging listener: %d %.80q, want 404 with a short body", path, status, body)
		}
	}
	if status, _ := get(ts.messagingURL + "/healthz"); status != http.StatusOK {
		t.Errorf("healthz on the messaging listener: %d", status)
	}
	if status, body := get(ts.URL + "/metrics"); status != http.StatusOK || !strings.Contains(body, "ivschatd_messaging_connections") {
		t.Errorf("metrics on the main listener: %d", status)
	}
}
