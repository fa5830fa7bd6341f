package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Wire layout of a token, before base64url (RFC 4648 §5, no padding):
//
//	version (1) | len(keyID) (1) | keyID | nonce | ciphertext | tag (16)
//
// where version 2 (what Seal writes) is XChaCha20-Poly1305 with a random
// 24-byte nonce, under a key derived from the ring key's secret (see
// deriveV2Key), and version 1 (only opened, for tokens sealed before version 2
// existed) is AES-256-GCM with a random 12-byte nonce under the secret itself.
// Version 2 exists because random 96-bit nonces allow only about 2^32 tokens
// per key before the chance of a repeated nonce, which would let a client
// forge tokens, stops being negligible: four days at 12,000 tokens/s. With
// 192-bit nonces the same risk takes more tokens than any server will mint.
//
// The version, length and key ID are the additional authenticated data, so they
// cannot be altered without failing authentication even though they travel in
// clear (Open needs the key ID before it can decrypt anything). The plaintext is
// the compact binary encoding of Claims described at encodeClaims, the same in
// both versions.
const (
	// wireVersion is what Seal writes. It changes whenever the layout, the
	// cipher or the plaintext encoding does; servers that do not know a
	// version reject its tokens as malformed rather than misread them.
	wireVersion   = 2
	wireVersionV1 = 1
	nonceSize     = 24 // XChaCha20-Poly1305 (chacha20poly1305.NonceSizeX)
	nonceSizeV1   = 12 // AES-GCM's standard nonce
	tagSize       = 16 // both ciphers
	// minWireSize is the smallest decoded token that can possibly be valid:
	// header with a one-byte key ID, the shorter (version 1) nonce and tag.
	minWireSize = 2 + 1 + nonceSizeV1 + tagSize
)

// MaxTokenLength bounds the length of a token string. Open rejects longer input
// before decoding anything, so a hostile client cannot make the server decode or
// decrypt megabytes; Seal refuses claims that would exceed it, so every token we
// issue also opens. 8 KiB is a common per-header limit of HTTP servers and
// proxies, and IVS limits (128-byte user IDs, 1 KiB of attributes) keep real
// tokens far below it.
const MaxTokenLength = 8192

// Errors returned by Open. Callers should test with errors.Is: Open wraps them
// with a short reason meant for logs, never for clients.
var (
	// ErrMalformed means the string is not a token of ours: bad encoding, an
	// unknown or retired key, failed authentication or an unknown version.
	ErrMalformed = errors.New("token: malformed or not issued by this server")
	// ErrExpired means the token is authentic but was presented after
	// Claims.TokenExpiresAt.
	ErrExpired = errors.New("token: expired")
)

// Pre-built so the rejection paths, which hostile input drives, do not allocate.
var (
	errTooLong      = fmt.Errorf("%w: too long", ErrMalformed)
	errEncoding     = fmt.Errorf("%w: not base64url", ErrMalformed)
	errTooShort     = fmt.Errorf("%w: too short", ErrMalformed)
	errVersion      = fmt.Errorf("%w: unknown version", ErrMalformed)
	errUnknownKey   = fmt.Errorf("%w: unknown key", ErrMalformed)
	errAuth         = fmt.Errorf("%w: authentication failed", ErrMalformed)
	errPayload      = fmt.Errorf("%w: undecodable claims", ErrMalformed)
	errNoKeys       = errors.New("token: Keyring not created with NewKeyring or LoadOrCreateKeyring")
	errTooBigToSeal = fmt.Errorf("token: claims too large: the token would exceed %d characters", MaxTokenLength)
)

// Strict rejects non-zero trailing bits, so each token has exactly one textual
// form: otherwise changing the last character could yield the same bytes and a
// "different" token that still opens.
var b64 = base64.RawURLEncoding.Strict()

// Seal encrypts c with the newest key of the ring and returns the token.
//
// Times are carried with nanosecond precision and come back from Open in UTC
// (the location and any monotonic clock reading are not carried). Empty and nil
// Capabilities or Attributes both come back as nil.
func (k *Keyring) Seal(c Claims) (string, error) {
	r := k.cur.Load()
	if r == nil {
		return "", errNoKeys
	}
	sk := r.sealer

	hdr := 2 + len(sk.id)
	// Refuse oversized claims before allocating for them; the exact check
	// follows sealing, since varint lengths are only bounded here.
	if b64.EncodedLen(hdr+nonceSize+claimsSizeMin(&c)+tagSize) > MaxTokenLength {
		return "", errTooBigToSeal
	}
	size := hdr + nonceSize + claimsSizeBound(&c) + tagSize
	buf := make([]byte, hdr+nonceSize, size)
	buf[0] = wireVersion
	buf[1] = byte(len(sk.id))
	copy(buf[2:], sk.id)
	nonce := buf[hdr : hdr+nonceSize]
	rand.Read(nonce) // never returns an error (crypto/rand doc, Go 1.24+)

	buf = encodeClaims(buf, &c)
	pt := buf[hdr+nonceSize:]
	// Encrypt in place (dst aliases plaintext exactly, as crypto/cipher allows):
	// one allocation for the whole token besides the final string.
	buf = sk.aead.Seal(buf[:hdr+nonceSize], nonce, pt, buf[:hdr])
	if b64.EncodedLen(len(buf)) > MaxTokenLength {
		return "", errTooBigToSeal
	}
	return b64.EncodeToString(buf), nil
}

// Open authenticates and decrypts tok and returns its claims if now is not
// after Claims.TokenExpiresAt. It returns an error wrapping ErrMalformed for
// anything that is not an intact token sealed by a key of the ring, and one
// wrapping ErrExpired (with zero Claims) for an authentic but expired token.
//
// tok comes straight from the network: Open never panics and does a bounded
// amount of work for any input.
func (k *Keyring) Open(tok string, now time.Time) (Claims, error) {
	if len(tok) > MaxTokenLength {
		return Claims{}, errTooLong
	}
	// The base64 decoder silently skips '\r' and '\n'; checking the alphabet
	// first keeps one textual form per token (and the tchar promise).
	for i := 0; i < len(tok); i++ {
		if !isTokenChar(tok[i]) {
			return Claims{}, errEncoding
		}
	}
	buf := make([]byte, b64.DecodedLen(len(tok)))
	n, err := b64.Decode(buf, []byte(tok))
	if err != nil {
		return Claims{}, errEncoding
	}
	buf = buf[:n]
	if len(buf) < minWireSize {
		return Claims{}, errTooShort
	}
	var ns int
	switch buf[0] {
	case wireVersion:
		ns = nonceSize
	case wireVersionV1:
		ns = nonceSizeV1
	default:
		return Claims{}, errVersion
	}
	idLen := int(buf[1])
	hdr := 2 + idLen
	if idLen == 0 || len(buf) < hdr+ns+tagSize {
		return Claims{}, errTooShort
	}
	r := k.cur.Load()
	if r == nil { // a zero Keyring: no key can have sealed this
		return Claims{}, errUnknownKey
	}
	keys, ok := r.byID[string(buf[2:hdr])] // no allocation: map index by converted []byte
	if !ok {
		return Claims{}, errUnknownKey
	}
	aead := keys.v2
	if buf[0] == wireVersionV1 {
		aead = keys.v1
	}
	nonce := buf[hdr : hdr+ns]
	ct := buf[hdr+ns:]
	pt, err := aead.Open(ct[:0], nonce, ct, buf[:hdr])
	if err != nil {
		return Claims{}, errAuth
	}
	c, ok := decodeClaims(pt)
	if !ok {
		// Authentic but undecodable: only a bug of ours (or a key shared with
		// an incompatible writer) gets here.
		return Claims{}, errPayload
	}
	if now.After(c.TokenExpiresAt) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func isTokenChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// The plaintext is a compact binary encoding rather than JSON: with three
// timestamps JSON makes a typical token ~40% longer (it travels in an HTTP
// header) and several times slower to seal and open. Fields, in order:
//
//	ID, RoomARN, UserID                 string
//	Capabilities                        uvarint count, then strings
//	Attributes                          uvarint count, then key, value strings
//	SessionDurationMinutes              varint
//	IssuedAt, TokenExpiresAt,
//	SessionExpiresAt                    varint Unix seconds, uvarint nanoseconds
//
// where a string is a uvarint byte length followed by the bytes. The format is
// versioned by wireVersion; any change to it must bump that.

func claimsSizeMin(c *Claims) int {
	n := len(c.ID) + len(c.RoomARN) + len(c.UserID)
	for _, s := range c.Capabilities {
		n += len(s)
	}
	for k, v := range c.Attributes {
		n += len(k) + len(v)
	}
	return n
}

func claimsSizeBound(c *Claims) int {
	strs := 3 + len(c.Capabilities) + 2*len(c.Attributes)
	return claimsSizeMin(c) + strs*binary.MaxVarintLen64 + 3*binary.MaxVarintLen64 + 3*2*binary.MaxVarintLen64
}

func encodeClaims(b []byte, c *Claims) []byte {
	b = appendString(b, c.ID)
	b = appendString(b, c.RoomARN)
	b = appendString(b, c.UserID)
	b = binary.AppendUvarint(b, uint64(len(c.Capabilities)))
	for _, s := range c.Capabilities {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Attributes)))
	for k, v := range c.Attributes {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = binary.AppendVarint(b, int64(c.SessionDurationMinutes))
	b = appendTime(b, c.IssuedAt)
	b = appendTime(b, c.TokenExpiresAt)
	b = appendTime(b, c.SessionExpiresAt)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime stores seconds and nanoseconds separately because UnixNano
// overflows outside 1678–2262 and the zero time.Time is a legitimate value.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads the plaintext encoding. It is only ever fed authenticated
// plaintext, but is written as if it were hostile anyway: every length and
// count is checked against what remains before anything is allocated.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count; each element takes at least minEach bytes, which
// bounds the allocation by the input size.
func (d *decoder) count(minEach int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/minEach) {
		d.bad = true
		d.b = nil
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad = true
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func decodeClaims(b []byte) (Claims, bool) {
	d := decoder{b: b}
	var c Claims
	c.ID = d.string()
	c.RoomARN = d.string()
	c.UserID = d.string()
	if n := d.count(1); n > 0 {
		c.Capabilities = make([]string, n)
		for i := range c.Capabilities {
			c.Capabilities[i] = d.string()
		}
	}
	if n := d.count(2); n > 0 {
		c.Attributes = make(map[string]string, n)
		for range n {
			k := d.string()
			if _, dup := c.Attributes[k]; dup {
				d.bad = true
			}
			c.Attributes[k] = d.string()
		}
	}
	dur := d.varint()
	if int64(int(dur)) != dur { // only possible where int is 32 bits
		d.bad = true
	}
	c.SessionDurationMinutes = int(dur)
	c.IssuedAt = d.time()
	c.TokenExpiresAt = d.time()
	c.SessionExpiresAt = d.time()
	if d.bad || len(d.b) != 0 {
		return Claims{}, false
	}
	return c, true
}
