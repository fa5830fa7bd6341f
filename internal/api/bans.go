package api

import (
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// The ban extension operations: BanUser, UnbanUser and ListBans. A ban is
// kept in the store (durable, shared by a cluster's nodes); the chat
// handshake reads it with the room, so it keeps the user out on every node
// as soon as it is stored, and an unban lets the user in as soon as it is
// deleted. BanUser then disconnects the user exactly as DisconnectUser does.

// maxBanMinutes bounds durationInMinutes: a year. Longer means "until
// unbanned", which is the absent duration.
const maxBanMinutes = 525600

type banUserInput struct {
	RoomIdentifier    *string `json:"roomIdentifier"`
	UserID            *string `json:"userId"`
	DurationInMinutes *int    `json:"durationInMinutes"`
	Reason            *string `json:"reason"`
}

// banJSON is a ban on the wire: BanUser's answer and ListBans' entries.
type banJSON struct {
	RoomARN   string `json:"roomArn,omitempty"`
	UserID    string `json:"userId"`
	Reason    string `json:"reason,omitempty"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}

func (h *Handler) banJSON(b *chat.Ban, withRoom bool) banJSON {
	out := banJSON{UserID: b.UserID, Reason: b.Reason, CreatedAt: formatTime(b.CreatedAt)}
	if withRoom {
		out.RoomARN = h.arn(chat.KindRoom, b.RoomID)
	}
	if !b.ExpiresAt.IsZero() {
		out.ExpiresAt = formatTime(b.ExpiresAt)
	}
	return out
}

func (h *Handler) banUser(c *call) (any, error) {
	var in banUserInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.str("userId", in.UserID, true, 1, 128, nil)
	v.intRange("durationInMinutes", in.DurationInMinutes, 1, maxBanMinutes)
	v.str("reason", in.Reason, false, 1, 256, nil)
	// Validated and authorized on the room as the standard operations on
	// a room's connections are (DisconnectUser).
	if err := h.liveRoom(c, &v, roomID, missing); err != nil {
		return nil, err
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	ban := &chat.Ban{RoomID: roomID, UserID: *in.UserID, Reason: deref(in.Reason), CreatedAt: now}
	if in.DurationInMinutes != nil {
		ban.ExpiresAt = now.Add(time.Duration(*in.DurationInMinutes) * time.Minute)
	}
	// Stored first: from here on no node admits the user. The disconnection
	// then reaches the user's open connections on every node.
	stored, err := h.store.BanUser(c.ctx, ban)
	if err != nil {
		return nil, err
	}
	h.log.InfoContext(c.ctx, "user banned", "roomId", roomID, "userId", ban.UserID, "expiresAt", ban.ExpiresAt)
	// A failure here (the broker did not take it) answers 500, which the
	// SDKs retry; the ban is stored, and a retry is harmless.
	if err := h.msg.DisconnectUser(c.ctx, roomID, ban.UserID, ban.Reason); err != nil {
		return nil, err
	}
	return h.banJSON(stored, true), nil
}

type unbanUserInput struct {
	RoomIdentifier *string `json:"roomIdentifier"`
	UserID         *string `json:"userId"`
}

// unbanUser is idempotent, like UntagResource: unbanning a user who is not
// (or no longer) banned answers 200 as well, so a retried call or an unban
// racing the ban's expiry does not fail. Only an unknown room is an error.
func (h *Handler) unbanUser(c *call) (any, error) {
	var in unbanUserInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.str("userId", in.UserID, true, 1, 128, nil)
	// Validated and authorized on the room as the standard operations on
	// a room's connections are (DisconnectUser).
	if err := h.liveRoom(c, &v, roomID, missing); err != nil {
		return nil, err
	}
	if _, err := h.store.GetRoom(c.ctx, roomID); err != nil {
		return nil, err
	}
	if err := h.store.UnbanUser(c.ctx, roomID, *in.UserID, h.now()); err != nil {
		return nil, err
	}
	h.log.InfoContext(c.ctx, "user unbanned", "roomId", roomID, "userId", *in.UserID)
	return struct{}{}, nil
}

type listBansInput struct {
	RoomIdentifier *string `json:"roomIdentifier"`
	MaxResults     *int    `json:"maxResults"`
	NextToken      *string `json:"nextToken"`
}

type listBansOutput struct {
	Bans      []banJSON `json:"bans"`
	NextToken string    `json:"nextToken,omitempty"`
}

func (h *Handler) listBans(c *call) (any, error) {
	var in listBansInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.intRange("maxResults", in.MaxResults, 1, 50)
	v.str("nextToken", in.NextToken, false, 0, 1024, nil)
	// Validated and authorized on the room as the standard operations on
	// a room's connections are (DisconnectUser).
	if err := h.liveRoom(c, &v, roomID, missing); err != nil {
		return nil, err
	}
	after, err := h.decodeBanToken(roomID, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	if _, err := h.store.GetRoom(c.ctx, roomID); err != nil {
		return nil, err
	}
	limit := derefOr(in.MaxResults, 50)
	bans, err := h.store.ListBans(c.ctx, roomID, h.now(), after, limit+1)
	if err != nil {
		return nil, err
	}
	out := listBansOutput{Bans: make([]banJSON, 0, min(len(bans), limit))}
	if len(bans) > limit {
		bans = bans[:limit]
		out.NextToken = h.encodeBanToken(roomID, bans[limit-1].UserID)
	}
	for _, b := range bans {
		out.Bans = append(out.Bans, h.banJSON(b, false))
	}
	return out, nil
}
