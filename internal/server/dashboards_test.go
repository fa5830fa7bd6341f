package server

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
)

// metricName matches the metric names a PromQL expression of ours uses.
var metricName = regexp.MustCompile(`\b(?:ivschatd?|go|process)_[a-zA-Z0-9_]+`)

// clusterOnly are the metrics a node exports only in cluster mode (with
// Redis): the pub/sub broker's, the cluster-stats gatherer's and the
// cluster connection quota's. The single-node ledger's metric is the
// converse.
var clusterOnly = []string{
	"ivschatd_broker_pubsub_live",
	"ivschatd_broker_pubsub_reconnects_total",
	"ivschatd_cluster_stats_failures_total",
	"ivschatd_connquota_cluster_connections",
	"ivschatd_connquota_degraded",
	"ivschatd_connquota_live_nodes",
}

// dashboardExprs returns every PromQL expression of the Grafana dashboard:
// its panels' targets and its template variables' queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/ivschatd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Definition string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	return exprs
}

// alertExprs returns the expr of every rule of the alert rules file: the
// text after "expr:" and the lines indented deeper that continue it.
func alertExprs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var exprs []string
	indent := -1 // of the expr being read, or -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		depth := len(line) - len(trimmed)
		switch {
		case strings.HasPrefix(trimmed, "expr:"):
			exprs = append(exprs, strings.TrimPrefix(trimmed, "expr:"))
			indent = depth
		case indent >= 0 && depth > indent && !strings.HasPrefix(trimmed, "#"):
			exprs[len(exprs)-1] += " " + trimmed
		default:
			indent = -1
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(exprs) == 0 {
		t.Fatal("no expr in alerts.yml")
	}
	return exprs
}

// usedMetrics is the set of metric names exprs use.
func usedMetrics(exprs []string) map[string]bool {
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used[name] = true
		}
	}
	return used
}

// exported returns the metric names a server's /metrics shows.
func exported(t *testing.T, ts *testServer) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for line := range strings.Lines(scrape(t, ts)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// someTraffic makes every metric that appears with traffic appear: a room
// with a logging configuration (local files), a message, an API call and a
// refused handshake.
func someTraffic(t *testing.T, ts *testServer) {
	t.Helper()
	c := ts.client()
	ctx := ctxT(t)
	lc, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: s3Destination("dashboard-bucket")})
	if err != nil {
		t.Fatal(err)
	}
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{*lc.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "u", "SEND_MESSAGE"))
	defer conn.Close()
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"hi"}`)
	if f := readFrame(t, conn); f["Type"] != "MESSAGE" {
		t.Fatalf("got %v", f)
	}
	if _, err := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: aws.String("nosuchroom01")}); err == nil {
		t.Fatal("GetRoom of a missing room succeeded")
	}
	if code := dialStatus(t, ts.URL, "not-a-token"); code < 400 {
		t.Fatalf("bad token answered %d", code)
	}
}

// Every metric the Grafana dashboard and the alert rules query exists on a
// running server's /metrics after some traffic; those that exist only in
// cluster mode are exactly clusterOnly, and are checked on a cluster node
// when Redis (and PostgreSQL) are available.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	used := usedMetrics(append(dashboardExprs(t), alertExprs(t)...))
	if len(used) < 20 {
		t.Fatalf("only %d metric names found in the dashboard and alerts: %v", len(used), used)
	}
	ts := startServer(t, "", nil)
	someTraffic(t, ts)
	have := exported(t, ts)
	for name := range used {
		if !have[name] && !slices.Contains(clusterOnly, name) {
			t.Errorf("%s is queried but a single node does not export it", name)
		}
	}
	for _, name := range clusterOnly {
		if have[name] {
			t.Errorf("%s is listed as cluster-only but a single node exports it", name)
		}
	}

	pg, redis := os.Getenv("IVSCHATD_TEST_POSTGRES_URL"), os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if pg == "" || redis == "" {
		t.Log("cluster-only metrics not checked: IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL unset")
		return
	}
	redisURL, kill := startRedis(t)
	t.Cleanup(kill) // after the nodes' cleanups stop them
	node, _ := startCluster(t, redisURL)
	someTraffic(t, node)
	have = exported(t, node)
	for _, name := range clusterOnly {
		if !have[name] {
			t.Errorf("%s is not exported by a cluster node", name)
		}
	}
	for name := range used {
		if !have[name] && name != "ivschatd_tokenledger_maintenance_failures_total" {
			t.Errorf("%s is queried but a cluster node does not export it", name)
		}
	}
}
