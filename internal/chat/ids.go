package chat

import (
	"crypto/rand"
	"strings"
)

// IDLength is the length of every generated identifier: room, logging
// configuration, message, event and error IDs are all 12 alphanumerics.
const IDLength = 12

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns a random 12-character [A-Za-z0-9] identifier (about 71 bits).
func NewID() string {
	var raw [IDLength]byte
	var out [IDLength]byte
	for filled := 0; filled < IDLength; {
		rand.Read(raw[:]) // never returns an error (crypto/rand doc, Go 1.24+)
		for _, b := range raw {
			// Rejection sampling keeps the distribution uniform: 248 = 4*62.
			if b >= 248 {
				continue
			}
			out[filled] = idAlphabet[b%62]
			filled++
			if filled == IDLength {
				break
			}
		}
	}
	return string(out[:])
}

// IsID reports whether s has the shape of a generated identifier.
func IsID(s string) bool {
	if len(s) != IDLength {
		return false
	}
	return isAlnum(s)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Kind is the type of an addressable resource.
type Kind string

// The two resource kinds of IVS Chat; the values are the ARN resource-type prefixes.
const (
	KindRoom                 Kind = "room"
	KindLoggingConfiguration Kind = "logging-configuration"
)

// Title is the kind as it starts a sentence.
func (k Kind) Title() string {
	if k == KindRoom {
		return "Room"
	}
	return "Logging configuration"
}

// Noun is the kind in running text.
func (k Kind) Noun() string {
	if k == KindRoom {
		return "room"
	}
	return "logging configuration"
}

// ARN is a parsed ivschat resource name: arn:aws:ivschat:REGION:ACCOUNT:KIND/ID.
type ARN struct {
	Region  string
	Account string
	Kind    Kind
	ID      string
}

func (a ARN) String() string {
	return "arn:aws:ivschat:" + a.Region + ":" + a.Account + ":" + string(a.Kind) + "/" + a.ID
}

// ParseARN parses an ivschat room or logging-configuration ARN. It accepts only
// the shapes the model's patterns accept for the two resource kinds.
func ParseARN(s string) (ARN, bool) {
	rest, ok := strings.CutPrefix(s, "arn:aws:ivschat:")
	if !ok {
		return ARN{}, false
	}
	region, rest, ok := strings.Cut(rest, ":")
	if !ok || region == "" || !isRegion(region) {
		return ARN{}, false
	}
	account, rest, ok := strings.Cut(rest, ":")
	if !ok || account == "" || !isDigits(account) {
		return ARN{}, false
	}
	kind, id, ok := strings.Cut(rest, "/")
	if !ok || (Kind(kind) != KindRoom && Kind(kind) != KindLoggingConfiguration) || id == "" || !isAlnumDash(id) {
		return ARN{}, false
	}
	return ARN{Region: region, Account: account, Kind: Kind(kind), ID: id}, true
}

func isRegion(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnumDash(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
