package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// Page tokens are opaque to clients and authenticated so a client can neither
// forge nor alter one: base64url(mac[16] | kind | updateTime unix nanos | id).
// The MAC covers the list kind, so a ListRooms token is refused by
// ListLoggingConfigurations.

const pageMACSize = 16

func (h *Handler) encodePageToken(kind chat.Kind, c chat.Cursor) string {
	payload := make([]byte, 0, 1+8+len(c.ID))
	payload = append(payload, kindByte(kind))
	payload = binary.BigEndian.AppendUint64(payload, uint64(c.UpdateTime.UnixNano()))
	payload = append(payload, c.ID...)
	out := append(h.pageMAC(payload), payload...)
	return base64.RawURLEncoding.EncodeToString(out)
}

// decodePageToken returns nil for an empty token (the first page).
func (h *Handler) decodePageToken(kind chat.Kind, s string) (*chat.Cursor, error) {
	if s == "" {
		return nil, nil
	}
	invalid := chat.Validation(chat.FieldError{Name: "nextToken", Message: "is not a token returned by this operation"})
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < pageMACSize+1+8 {
		return nil, invalid
	}
	mac, payload := raw[:pageMACSize], raw[pageMACSize:]
	if !hmac.Equal(mac, h.pageMAC(payload)) || payload[0] != kindByte(kind) {
		return nil, invalid
	}
	nanos := int64(binary.BigEndian.Uint64(payload[1:9]))
	return &chat.Cursor{UpdateTime: time.Unix(0, nanos).UTC(), ID: string(payload[9:])}, nil
}

func (h *Handler) pageMAC(payload []byte) []byte {
	m := hmac.New(sha256.New, h.cfg.PageTokenKey)
	m.Write(payload)
	return m.Sum(nil)[:pageMACSize]
}

func kindByte(k chat.Kind) byte {
	if k == chat.KindRoom {
		return 'r'
	}
	return 'l'
}
