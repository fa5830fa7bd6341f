package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Recent messages (the ivschatd:history extension) in cluster mode: each
// room's last MESSAGE frames are a Redis list, <prefix>:history:<roomID>,
// holding the same encoded Message payloads that go through the room's
// channel. The list is written by the script that publishes, so that it is
// in exactly the order every subscriber receives the channel's messages in:
// Redis runs a script atomically, and a PUBLISH inside it is ordered with
// every other PUBLISH to the channel like any other.

// HistoryWrite says what a publish does to the room's shared history.
type HistoryWrite struct {
	// Append adds the published message (a MESSAGE frame) at the end of
	// the list, which keeps its last Keep entries.
	Append bool
	Keep   int
	// RemoveID removes the MESSAGE whose Id is RemoveID (a DELETE_MESSAGE
	// passes). Ignored when Append is set.
	RemoveID string
	// TTL is how long the list is kept after it was last written or read.
	TTL time.Duration
}

// historyPublish appends (ARGV[3] == "a") or removes (ARGV[3] == "r") and
// publishes, in one atomic step.
//
//	KEYS[1]  the room's history list
//	ARGV[1]  the room's channel
//	ARGV[2]  the encoded Message
//	ARGV[3]  "a" append, "r" remove
//	ARGV[4]  entries to keep (append) or the Id to remove (remove)
//	ARGV[5]  TTL in milliseconds
//
// Removal scans the list (at most Keep entries, a moderation action, so
// rare): an entry is the encoded Message of a MESSAGE frame, whose first
// `"Id":"` is the frame's own Id (the encoder writes Type and Id first,
// and every quote inside a JSON string is escaped).
var historyPublish = redis.NewScript(`
if ARGV[3] == "a" then
  redis.call("RPUSH", KEYS[1], ARGV[2])
  redis.call("LTRIM", KEYS[1], -tonumber(ARGV[4]), -1)
  redis.call("PEXPIRE", KEYS[1], ARGV[5])
else
  local needle = '"Id":"' .. ARGV[4] .. '"'
  for _, e in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
    local i = string.find(e, '"Id":"', 1, true)
    if i and string.sub(e, i, i + #needle - 1) == needle then
      redis.call("LREM", KEYS[1], 1, e)
    end
  end
end
return redis.call("PUBLISH", ARGV[1], ARGV[2])
`)

func (b *Redis) historyKey(roomID string) string { return b.prefix + ":history:" + roomID }

// PublishHistory is Publish that also applies w to the room's history, in
// the same atomic step as the PUBLISH.
func (b *Redis) PublishHistory(ctx context.Context, roomID string, m Message, w HistoryWrite) error {
	if b.closedFlag.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	payload := appendMessage(make([]byte, 0, len(m.Frame)+len(m.UserID)+len(m.Reason)+16), m)
	op, arg := "r", w.RemoveID
	if w.Append {
		op, arg = "a", strconv.Itoa(max(w.Keep, 1))
	}
	ttl := strconv.FormatInt(max(w.TTL.Milliseconds(), 1), 10)
	err := historyPublish.Run(ctx, b.client, []string{b.historyKey(roomID)}, b.channel(roomID), payload, op, arg, ttl).Err()
	if err != nil {
		if b.closedFlag.Load() {
			return ErrClosed
		}
		return fmt.Errorf("broker: publish to room %s: %w", roomID, err)
	}
	return nil
}

// History returns the frames of the room's history, oldest first, and
// extends its expiry by ttl (a room that viewers join keeps its history).
func (b *Redis) History(ctx context.Context, roomID string, ttl time.Duration) ([][]byte, error) {
	if b.closedFlag.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	key := b.historyKey(roomID)
	var lr *redis.StringSliceCmd
	_, err := b.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		lr = p.LRange(ctx, key, 0, -1)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("broker: read history of room %s: %w", roomID, err)
	}
	frames := make([][]byte, 0, len(lr.Val()))
	for _, p := range lr.Val() {
		m, err := decodeMessage(p)
		if err != nil || m.Kind != KindFrame || len(m.Frame) == 0 {
			// Written by a process this one does not understand: skip it,
			// as dispatch does.
			continue
		}
		frames = append(frames, m.Frame)
	}
	return frames, nil
}

// ClearHistory forgets the room's history (the room turned it off).
func (b *Redis) ClearHistory(ctx context.Context, roomID string) error {
	if b.closedFlag.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	if err := b.client.Del(ctx, b.historyKey(roomID)).Err(); err != nil {
		return fmt.Errorf("broker: clear history of room %s: %w", roomID, err)
	}
	return nil
}
