package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/ivschatd/ivschatd/internal/config"
)

// failingS3 is an S3-compatible endpoint whose buckets exist (the
// destination check passes, the configurations become ACTIVE) but refuse
// every object: bucket "denied-bucket" with 403 AccessDenied, any other with
// 404 NoSuchBucket, as when a bucket policy changes or the bucket is deleted
// after the configuration was made.
func failingS3(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		if strings.HasPrefix(strings.TrimPrefix(r.URL.Path, "/"), "denied-bucket/") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// chatClient is one WebSocket connection of the test.
type chatClient struct {
	name string
	conn net.Conn
}

// expect reads the next frame of every client and checks its Type (and
// EventName for events), so that the deliveries are written before the
// test reads /metrics.
func expect(t *testing.T, clients []chatClient, typ, eventName string) {
	t.Helper()
	for _, c := range clients {
		f := readFrame(t, c.conn)
		if f["Type"] != typ || (eventName != "" && f["EventName"] != eventName) {
			t.Fatalf("%s got %v, want %s %s", c.name, f, typ, eventName)
		}
	}
}

// The ten Amazon IVS Chat CloudWatch metrics, as ivschat_* Prometheus
// metrics, count real traffic with the CloudWatch dimensions as labels:
// messages, deletions, disconnections (WebSocket) and SendEvent (API);
// review handlers that fail and that answer nonsense; chat-log destinations
// that deny access and that no longer exist.
func TestIVSNamedMetrics(t *testing.T) {
	s3srv := failingS3(t)
	ts := startServer(t, "", func(c *config.Config) {
		c.S3Endpoint = s3srv.URL
		c.S3PathStyle = true
		c.DestinationsAccessKeyID, c.DestinationsSecretKey = "AKIDS3", "s3-secret"
		c.ChatLogS3BatchInterval = 50 * time.Millisecond
	})
	c := ts.client()
	ctx := ctxT(t)

	// The review handlers: one fails (500), one answers what is not a
	// review. Their URLs carry a credential that /metrics must not show.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "handler crashed", http.StatusInternalServerError)
	}))
	defer failing.Close()
	invalid := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "this is not a review")
	}))
	defer invalid.Close()

	lcDenied, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: s3Destination("denied-bucket")})
	if err != nil {
		t.Fatal(err)
	}
	lcGone, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: s3Destination("gone-bucket")})
	if err != nil {
		t.Fatal(err)
	}
	logged, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{MaximumMessageRatePerSecond: aws.Int32(100),
		LoggingConfigurationIdentifiers: []string{*lcDenied.Arn, *lcGone.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	reviewRoom := func(url string) string {
		rm, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{
			Uri: aws.String(url + "/review?token=s3cr3t"), FallbackResult: types.FallbackResultAllow}})
		if err != nil {
			t.Fatal(err)
		}
		return *rm.Arn
	}
	failingRoom, invalidRoom := reviewRoom(failing.URL), reviewRoom(invalid.URL)

	dial := func(name, room string, caps ...string) chatClient {
		conn := dialChat(t, ts.URL, chatToken(t, c, room, name, caps...))
		t.Cleanup(func() { conn.Close() })
		return chatClient{name, conn}
	}
	mod := dial("mod", *logged.Arn, "SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")
	v1, v2 := dial("v1", *logged.Arn), dial("v2", *logged.Arn)
	all := []chatClient{mod, v1, v2}

	// Two messages, each delivered to the three connections.
	send(t, mod.conn, `{"Action":"SEND_MESSAGE","RequestId":"m1","Content":"one"}`)
	expect(t, all, "MESSAGE", "")
	send(t, mod.conn, `{"Action":"SEND_MESSAGE","RequestId":"m2","Content":"two"}`)
	expect(t, all, "MESSAGE", "")
	send(t, mod.conn, `{"Action":"DELETE_MESSAGE","RequestId":"d1","Id":"someid"}`)
	expect(t, all, "EVENT", "aws:DELETE_MESSAGE")
	if _, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: logged.Arn, EventName: aws.String("app:poll")}); err != nil {
		t.Fatal(err)
	}
	expect(t, all, "EVENT", "app:poll")
	// A request without a valid Action is a request, of no action; its
	// ERROR is no delivery.
	send(t, mod.conn, `{"Action":"NOPE","RequestId":"x1"}`)
	expect(t, []chatClient{mod}, "ERROR", "")
	send(t, mod.conn, `{"Action":"DISCONNECT_USER","RequestId":"k1","UserId":"v2"}`)
	expect(t, all, "EVENT", "aws:DISCONNECT_USER")

	// One message in each review room: the handlers fail, the fallback
	// (ALLOW) delivers it to its sender.
	for _, room := range []string{failingRoom, invalidRoom} {
		s := dial("sender", room, "SEND_MESSAGE")
		send(t, s.conn, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"reviewed"}`)
		expect(t, []chatClient{s}, "MESSAGE", "")
	}

	hookLabel := func(srv *httptest.Server) string { return srv.URL + "/review" }
	want := map[string]float64{
		// mod, v1 and the two review-room senders (v2 was disconnected).
		`ivschat_concurrent_chat_connections`:                                        4,
		`ivschat_deliveries_total{action="SEND_MESSAGE"}`:                            2*3 + 2,
		`ivschat_deliveries_total{action="DELETE_MESSAGE"}`:                          3,
		`ivschat_deliveries_total{action="DISCONNECT_USER"}`:                         3,
		`ivschat_deliveries_total{action="SEND_EVENT"}`:                              3,
		`ivschat_messaging_deliveries_total`:                                         8 + 3 + 3 + 3,
		`ivschat_requests_total{action="SEND_MESSAGE"}`:                              4,
		`ivschat_requests_total{action="DELETE_MESSAGE"}`:                            1,
		`ivschat_requests_total{action="DISCONNECT_USER"}`:                           1,
		`ivschat_requests_total{action="SEND_EVENT"}`:                                1,
		`ivschat_messaging_requests_total`:                                           4 + 1 + 1 + 1 + 1,
		`ivschat_invocation_errors_total{uri="` + hookLabel(failing) + `"}`:          1,
		`ivschat_response_validation_errors_total{uri="` + hookLabel(failing) + `"}`: 0,
		`ivschat_invocation_errors_total{uri="` + hookLabel(invalid) + `"}`:          0,
		`ivschat_response_validation_errors_total{uri="` + hookLabel(invalid) + `"}`: 1,
	}
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		for series, v := range want {
			if got := metricValue(t, ts, series); got != v {
				return fmt.Errorf("%s = %v, want %v", series, got, v)
			}
		}
		return nil
	})
	if body := scrape(t, ts); strings.Contains(body, "s3cr3t") {
		t.Errorf("/metrics shows a handler URL's credential")
	}

	// The chat log's deliveries fail and are retried: the counts only grow,
	// each configuration's by the kind of its destination's failure.
	series := func(name, arn string) string { return name + `{logging_configuration="` + arn + `"}` }
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, arn := range []string{*lcDenied.Arn, *lcGone.Arn} {
			if metricValue(t, ts, series("ivschat_log_destination_errors_total", arn)) < 1 {
				return fmt.Errorf("no LogDestinationErrors yet for %s", arn)
			}
		}
		if metricValue(t, ts, series("ivschat_log_destination_access_denied_error_total", *lcDenied.Arn)) < 1 {
			return fmt.Errorf("no LogDestinationAccessDeniedError yet")
		}
		if metricValue(t, ts, series("ivschat_log_destination_resource_not_found_errors_total", *lcGone.Arn)) < 1 {
			return fmt.Errorf("no LogDestinationResourceNotFoundErrors yet")
		}
		return nil
	})
	for name, arn := range map[string]string{
		"ivschat_log_destination_resource_not_found_errors_total": *lcDenied.Arn,
		"ivschat_log_destination_access_denied_error_total":       *lcGone.Arn,
	} {
		if v := metricValue(t, ts, series(name, arn)); v != 0 {
			t.Errorf("%s = %v, want 0 (wrong kind of failure)", series(name, arn), v)
		}
	}
}
