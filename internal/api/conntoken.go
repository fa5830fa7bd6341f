package api

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
)

// ListRoomConnections' nextToken: like the list operations' page tokens
// (pagetoken.go), opaque and authenticated, so a client can neither forge
// one nor use one for another room:
// base64url(mac[16] | 'c' | connectedAt unix nanos | connection id | len(room) | room | node).
// The kind byte keeps it from being taken for a ListRooms token and back.

const connTokenKind = 'c'

func (h *Handler) encodeConnectionToken(roomID string, c clusterstats.Cursor) string {
	payload := make([]byte, 0, 1+8+8+1+len(roomID)+len(c.Node))
	payload = append(payload, connTokenKind)
	payload = binary.BigEndian.AppendUint64(payload, uint64(c.ConnectedAt.UnixNano()))
	payload = binary.BigEndian.AppendUint64(payload, c.ID)
	payload = append(payload, byte(len(roomID)))
	payload = append(payload, roomID...)
	payload = append(payload, c.Node...)
	return base64.RawURLEncoding.EncodeToString(append(h.pageMAC(payload), payload...))
}

// decodeConnectionToken returns nil for an empty token (the first page).
func (h *Handler) decodeConnectionToken(roomID, s string) (*clusterstats.Cursor, error) {
	if s == "" {
		return nil, nil
	}
	invalid := chat.Validation(chat.FieldError{Name: "nextToken", Message: "is not a token returned by this operation for this room"})
	// Strict: one token, one spelling (no stray bits in the last
	// character).
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	const fixed = 1 + 8 + 8 + 1
	if err != nil || len(raw) < pageMACSize+fixed {
		return nil, invalid
	}
	mac, payload := raw[:pageMACSize], raw[pageMACSize:]
	if !hmac.Equal(mac, h.pageMAC(payload)) || payload[0] != connTokenKind {
		return nil, invalid
	}
	n := int(payload[17])
	if len(payload) < fixed+n || string(payload[fixed:fixed+n]) != roomID {
		return nil, invalid
	}
	return &clusterstats.Cursor{
		ConnectedAt: time.Unix(0, int64(binary.BigEndian.Uint64(payload[1:9]))).UTC(),
		ID:          binary.BigEndian.Uint64(payload[9:17]),
		Node:        string(payload[fixed+n:]),
	}, nil
}
