package messaging

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/throttle"
)

// rejection is why a handshake was refused. Official clients see every
// refusal as one opaque socket error and retry, so the server's log and
// metrics are where a developer finds the reason.
type rejection uint8

const (
	rejectNotWebSocket     rejection = iota // 426: not an upgrade request
	rejectShuttingDown                      // 503
	rejectTokenMissing                      // 401: no Sec-WebSocket-Protocol
	rejectTokenInvalid                      // 401: malformed, forged, or not a room's token
	rejectTokenExpired                      // 401
	rejectTokenUsed                         // 401: tokens are single use
	rejectRoomNotFound                      // 404: the room does not exist (deleted)
	rejectQuota                             // 429: MaxConnections reached
	rejectRoomLookupFailed                  // 503 (store unavailable) or 500: the room source failed
	rejectLedgerFailed                      // 500: the token ledger failed
	rejectSubscribeFailed                   // 500: the broker subscription failed
	rejectUpgradeFailed                     // the WebSocket upgrade itself failed (bad headers, write error)
	rejectBanned                            // 403: the user is banned from the room (BanUser)
	numRejections
)

// rejectionNames are the reason labels of the log and of
// ivschatd_messaging_handshakes_rejected_total.
var rejectionNames = [numRejections]string{
	rejectNotWebSocket:     "not_websocket",
	rejectShuttingDown:     "shutting_down",
	rejectTokenMissing:     "token_missing",
	rejectTokenInvalid:     "token_invalid",
	rejectTokenExpired:     "token_expired",
	rejectTokenUsed:        "token_used",
	rejectRoomNotFound:     "room_not_found",
	rejectQuota:            "quota_exceeded",
	rejectRoomLookupFailed: "room_lookup_failed",
	rejectLedgerFailed:     "token_ledger_failed",
	rejectSubscribeFailed:  "subscribe_failed",
	rejectUpgradeFailed:    "upgrade_failed",
	rejectBanned:           "banned",
}

func (r rejection) String() string { return rejectionNames[r] }

// rejectLogEvery is how often each reason is logged at Info; refusals in
// between are logged at Debug, so a flood of bad handshakes (a client
// retrying with a stale token in a loop) cannot fill the disk.
const rejectLogEvery = time.Minute

// rejections counts refused handshakes by reason and remembers when each
// reason was last logged at Info.
type rejections struct {
	count [numRejections]atomic.Uint64
	info  [numRejections]throttle.Every // one Info line per reason per rejectLogEvery
}

// note counts one refusal and logs it: at Info when the reason was not
// logged at Info within rejectLogEvery, else at Debug.
func (rs *rejections) note(log *slog.Logger, reason rejection, status int, detail string, r *http.Request, attrs ...any) {
	rs.count[reason].Add(1)
	level := slog.LevelDebug
	if rs.info[reason].Allow(time.Now(), rejectLogEvery) {
		level = slog.LevelInfo
		attrs = append(attrs, "note", "further refusals for this reason within a minute are logged at debug level")
	}
	if !log.Enabled(context.Background(), level) {
		return
	}
	attrs = append([]any{"reason", reason.String(), "status", status, "detail", detail, "remote", r.RemoteAddr}, attrs...)
	log.Log(context.Background(), level, "messaging: WebSocket handshake refused", attrs...)
}

// byReason returns the counts by reason label.
func (rs *rejections) byReason() map[string]uint64 {
	m := make(map[string]uint64, numRejections)
	for i := range numRejections {
		m[rejectionNames[i]] = rs.count[i].Load()
	}
	return m
}

// total is the number of refused handshakes.
func (rs *rejections) total() uint64 {
	var n uint64
	for i := range numRejections {
		n += rs.count[i].Load()
	}
	return n
}
