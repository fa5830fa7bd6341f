package server

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/faultproxy"
)

// TestReadyz: /readyz answers on both listeners, GET and HEAD, 200 with
// {"status":"ready"} on a node that can serve.
func TestReadyz(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.MessagingListen = "127.0.0.1:0" })
	for _, base := range []string{ts.URL, ts.messagingURL} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, err := http.DefaultClient.Do(mustRequest(t, method, base+"/readyz", ""))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s/readyz: %d %q", method, base, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if want := `{"status":"ready"}` + "\n"; method == http.MethodGet && string(body) != want {
				t.Errorf("GET %s/readyz: body %q, want %q", base, body, want)
			}
		}
	}
}

// TestReadyzStoreDown: with PostgreSQL unreachable /readyz answers 503
// within the check's 2 s bound and names the store (with the error on the
// main listener, without it on the viewer-facing one), while /healthz stays
// 200; it is 200 again once PostgreSQL is back.
func TestReadyzStoreDown(t *testing.T) {
	pgURL := os.Getenv("IVSCHATD_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL not set")
	}
	proxy, viaProxy := faultproxy.InFront(t, withSearchPath(pgURL, freshSchema(t, pgURL)))
	ts := startServer(t, "", func(c *config.Config) {
		c.PostgresURL = viaProxy
		c.MessagingListen = "127.0.0.1:0"
	})
	waitReady(t, ts, http.StatusOK, 5*time.Second)

	proxy.Freeze() // silent, the worst case for a bound
	time.Sleep(readyCacheFor)
	start := time.Now()
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var body readyBody
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Status != "unavailable" || body.Failing["store"] == "" {
		t.Fatalf("/readyz with PostgreSQL black-holed: %d %+v", resp.StatusCode, body)
	}
	if took > readyCheckTimeout+time.Second {
		t.Errorf("/readyz took %v with PostgreSQL black-holed", took)
	}
	t.Logf("/readyz 503 in %v: %v", took.Round(time.Millisecond), body.Failing)
	resp, err = http.Get(ts.messagingURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"status":"unavailable","failing":{"store":"unavailable"}}` + "\n"; resp.StatusCode != http.StatusServiceUnavailable || string(raw) != want {
		t.Errorf("messaging listener /readyz: %d %s, want 503 %s", resp.StatusCode, raw, want)
	}
	if code := httpStatus(t, ts.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the store down: %d, want 200", code)
	}
	if n := metricValue(t, ts, `ivschatd_readiness_check_failures_total{dependency="store"}`); n < 1 {
		t.Errorf("readiness failures of the store counted %v times", n)
	}

	proxy.Heal()
	waitReady(t, ts, http.StatusOK, 10*time.Second)
}
