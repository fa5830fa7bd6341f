package server

import (
	"os"
	"path/filepath"
	"testing"
)

// Item 7: without Redis, a token that opened a connection before a restart
// is refused after it (401, as any used token), while a token minted before
// the restart and not used still opens. The ledger lives in its own file of
// the data dir.
func TestRestartKeepsUsedTokensUsed(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	room := createRoom(t, ts.client(), "single-use")
	used := chatToken(t, ts.client(), *room.Arn, "viewer")
	unused := chatToken(t, ts.client(), *room.Arn, "later")
	dialChat(t, ts.URL, used).Close()
	ts.Stop()

	ts = startServer(t, dir, nil)
	if conn, status := tryChat(t, ts.URL, used); conn != nil || status != 401 {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("a token used before the restart: status %d, want 401", status)
	}
	dialChat(t, ts.URL, unused).Close()
	if _, err := os.Stat(filepath.Join(dir, "used-tokens.db")); err != nil {
		t.Errorf("ledger file: %v", err)
	}
	if got := metricValue(t, ts, `ivschatd_messaging_handshakes_rejected_total{reason="token_used"}`); got != 1 {
		t.Errorf("token_used refusals after the restart: %v, want 1", got)
	}
}
