// Package token seals and opens chat tokens: the opaque credentials that
// CreateChatToken returns and that a WebSocket client presents, once, to join a
// room.
package token

import "time"

// Claims is what a chat token carries. It is sealed (encrypted and
// authenticated with XChaCha20-Poly1305) so clients can neither read nor forge
// it. Tokens carry it in a compact binary encoding (see encodeClaims), not as
// JSON: the JSON tags serve code that logs or stores claims. Times survive a round trip to the nanosecond but come back in UTC.
type Claims struct {
	// ID is unique per token; the messaging gateway records it so that each
	// token opens one connection only.
	ID           string            `json:"i"`
	RoomARN      string            `json:"r"`
	UserID       string            `json:"u"`
	Capabilities []string          `json:"c,omitempty"`
	Attributes   map[string]string `json:"a,omitempty"`
	// SessionDurationMinutes is the value the token was minted with.
	SessionDurationMinutes int       `json:"d"`
	IssuedAt               time.Time `json:"t"`
	// TokenExpiresAt is the last moment the token may open a connection.
	TokenExpiresAt time.Time `json:"te"`
	// SessionExpiresAt is when a connection opened with the token is ended.
	SessionExpiresAt time.Time `json:"se"`
}

// Has reports whether the token grants capability.
func (c *Claims) Has(capability string) bool {
	for _, have := range c.Capabilities {
		if have == capability {
			return true
		}
	}
	return false
}
