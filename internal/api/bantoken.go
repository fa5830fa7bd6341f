package api

import (
	"crypto/hmac"
	"encoding/base64"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// ListBans' nextToken: like the list operations' page tokens (pagetoken.go),
// opaque and authenticated, so a client can neither forge one nor use one
// for another room: base64url(mac[16] | 'b' | len(room) | room | last user ID).
// The kind byte keeps it from being taken for another list's token.

const banTokenKind = 'b'

func (h *Handler) encodeBanToken(roomID, afterUserID string) string {
	payload := make([]byte, 0, 2+len(roomID)+len(afterUserID))
	payload = append(payload, banTokenKind, byte(len(roomID)))
	payload = append(payload, roomID...)
	payload = append(payload, afterUserID...)
	return base64.RawURLEncoding.EncodeToString(append(h.pageMAC(payload), payload...))
}

// decodeBanToken returns the user ID the page starts after ("" for an
// empty token: the first page).
func (h *Handler) decodeBanToken(roomID, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	invalid := chat.Validation(chat.FieldError{Name: "nextToken", Message: "is not a token returned by this operation for this room"})
	// Strict: one token, one spelling (no stray bits in the last character).
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	const fixed = 2
	if err != nil || len(raw) < pageMACSize+fixed {
		return "", invalid
	}
	mac, payload := raw[:pageMACSize], raw[pageMACSize:]
	if !hmac.Equal(mac, h.pageMAC(payload)) || payload[0] != banTokenKind {
		return "", invalid
	}
	n := int(payload[1])
	if len(payload) < fixed+n || string(payload[fixed:fixed+n]) != roomID {
		return "", invalid
	}
	after := string(payload[fixed+n:])
	if after == "" {
		// Never encoded: a page always ends with a user.
		return "", invalid
	}
	return after, nil
}
