package token

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// SecretSize is the length of a key's secret: 256 bits, from which the
// XChaCha20-Poly1305 key that seals tokens is derived, and which is itself the
// AES-256 key of tokens sealed before that (wire version 1).
const SecretSize = 32

// MaxKeyIDLength bounds key IDs, which travel in clear in every token.
const MaxKeyIDLength = 32

// Key is one token key.
//
// Key's String and GoString methods redact the secret so that a Key (or a
// config struct holding one) can be logged with %v or %#v without leaking it;
// SecretString is the one way to get the secret in text form.
type Key struct {
	// ID names the key in every token it seals, so that Open can pick the
	// key without trying each. 1 to MaxKeyIDLength characters of
	// [A-Za-z0-9._-]; generated IDs are 8 hex digits.
	ID string
	// Secret is SecretSize random bytes.
	Secret []byte
	// Created orders keys: the newest seals. Keys parsed with ParseKey have a
	// zero Created.
	Created time.Time
	// SealingSince is when a server first sealed a token with the key (see
	// Keyring.MarkSealing); zero until then and for keys not from a key
	// file. The key that seals before it stops sealing at this time, which
	// is what RetireKeys needs to know.
	SealingSince time.Time
}

// GenerateKey returns a new random key created now.
func GenerateKey() (Key, error) {
	// 32 bits of ID are plenty: IDs only need to differ within one ring, and
	// NewKeyring rejects duplicates. Short IDs keep tokens short.
	var id [4]byte
	secret := make([]byte, SecretSize)
	// crypto/rand.Read never returns an error (Go 1.24+); checked anyway in
	// case that guarantee is ever relaxed, since a zero key would be silent.
	if _, err := rand.Read(id[:]); err != nil {
		return Key{}, fmt.Errorf("token: generating key: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("token: generating key: %w", err)
	}
	return Key{ID: hex.EncodeToString(id[:]), Secret: secret, Created: time.Now().UTC()}, nil
}

// ParseKey parses a key in the form "ID:SECRET", where ID is 1 to
// MaxKeyIDLength characters of [A-Za-z0-9._-] and SECRET is the 32-byte secret
// in base64 (standard or URL alphabet, padded or not), for example
//
//	k1:3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
//
// so operators can supply keys through a config file or an environment
// variable. Generate one with `head -c 32 /dev/urandom | base64`. The result has
// a zero Created; among such keys NewKeyring seals with the last one given.
func ParseKey(s string) (Key, error) {
	id, enc, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, errors.New(`token: key must have the form "ID:base64secret"`)
	}
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	enc = strings.TrimSpace(enc) // trailing newline from `base64` or a file
	var secret []byte
	var err error
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err = e.DecodeString(enc); err == nil {
			break
		}
	}
	if err != nil {
		// Not wrapping err: it would quote part of the secret.
		return Key{}, fmt.Errorf("token: key %q: secret is not valid base64", id)
	}
	if len(secret) != SecretSize {
		return Key{}, fmt.Errorf("token: key %q: secret is %d bytes, want %d", id, len(secret), SecretSize)
	}
	return Key{ID: id, Secret: secret}, nil
}

// SecretString returns the key as "ID:SECRET" with the secret in standard
// padded base64, the form ParseKey reads. It contains the secret: never log it.
func (k Key) SecretString() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
}

// String returns the key ID and a redacted secret, so keys are safe to log.
// Use SecretString for the parseable form.
func (k Key) String() string { return k.ID + ":REDACTED" }

// GoString keeps %#v from printing the secret bytes.
func (k Key) GoString() string {
	return fmt.Sprintf("token.Key{ID: %q, Secret: REDACTED, Created: %s}", k.ID, k.Created.Format(time.RFC3339Nano))
}

func checkID(id string) error {
	if id == "" || len(id) > MaxKeyIDLength {
		return fmt.Errorf("token: key ID %q must be 1 to %d characters", id, MaxKeyIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isTokenChar(c) && c != '.' {
			return fmt.Errorf("token: key ID %q may contain only A-Z a-z 0-9 . _ -", id)
		}
	}
	return nil
}

// Keyring holds the keys that open tokens and picks the one that seals them. It
// is safe for concurrent use: Seal and Open read an immutable snapshot through
// an atomic pointer, so they never wait for Rotate. Create one with NewKeyring
// or LoadOrCreateKeyring; a zero Keyring seals nothing and opens nothing.
type Keyring struct {
	cur  atomic.Pointer[ring]
	mu   sync.Mutex // serializes Rotate and its file write
	path string     // "" unless loaded by LoadOrCreateKeyring
}

// ring is an immutable snapshot of the keys.
type ring struct {
	keys   []Key // in the order given or added
	byID   map[string]keyAEADs
	sealer sealKey
}

func (r *ring) has(id string) bool {
	_, ok := r.byID[id]
	return ok
}

// keyAEADs are one key's ciphers, one per wire version.
type keyAEADs struct {
	v2 cipher.AEAD // XChaCha20-Poly1305 under deriveV2Key(secret): seals and opens
	v1 cipher.AEAD // AES-256-GCM under the secret: opens tokens sealed before version 2
}

type sealKey struct {
	id   string
	aead cipher.AEAD // the v2 cipher
}

// NewKeyring returns a ring of keys. The newest key by Created seals; among
// keys with equal Created, the last given. Every key opens. Keys are copied.
func NewKeyring(keys ...Key) (*Keyring, error) {
	r, err := newRing(keys)
	if err != nil {
		return nil, err
	}
	k := &Keyring{}
	k.cur.Store(r)
	return k, nil
}

func newRing(keys []Key) (*ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: a keyring needs at least one key")
	}
	if len(keys) > 255 {
		// Not a wire limit, but a ring this large means keys are never retired.
		return nil, fmt.Errorf("token: %d keys is too many", len(keys))
	}
	r := &ring{keys: make([]Key, len(keys)), byID: make(map[string]keyAEADs, len(keys))}
	newest := 0
	for i, key := range keys {
		if err := checkID(key.ID); err != nil {
			return nil, err
		}
		if len(key.Secret) != SecretSize {
			return nil, fmt.Errorf("token: key %q: secret is %d bytes, want %d", key.ID, len(key.Secret), SecretSize)
		}
		if _, dup := r.byID[key.ID]; dup {
			return nil, fmt.Errorf("token: duplicate key ID %q", key.ID)
		}
		aeads, err := newKeyAEADs(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("token: key %q: %w", key.ID, err)
		}
		r.byID[key.ID] = aeads
		r.keys[i] = cloneKey(key)
		if !key.Created.Before(keys[newest].Created) {
			newest = i
		}
	}
	r.sealer = sealKey{id: keys[newest].ID, aead: r.byID[keys[newest].ID].v2}
	return r, nil
}

// newKeyAEADs builds a key's ciphers once, when the ring is made: they cost
// more to build than a Seal, and both are stateless, so all goroutines share
// them.
func newKeyAEADs(secret []byte) (keyAEADs, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return keyAEADs{}, err
	}
	v1, err := cipher.NewGCM(block)
	if err != nil {
		return keyAEADs{}, err
	}
	v2key, err := deriveV2Key(secret)
	if err != nil {
		return keyAEADs{}, err
	}
	v2, err := chacha20poly1305.NewX(v2key)
	if err != nil {
		return keyAEADs{}, err
	}
	return keyAEADs{v2: v2, v1: v1}, nil
}

// deriveV2Key derives the XChaCha20-Poly1305 key from a ring secret rather
// than using the secret directly, because the secret already keys AES-256-GCM
// for version-1 tokens: one key serving two ciphers is a cross-algorithm risk
// that separate keys rule out for the cost of one HKDF per key and restart.
// The key ring file and tokenKeys keep holding the same 32-byte secrets.
func deriveV2Key(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "ivschatd chat token v2 XChaCha20-Poly1305", chacha20poly1305.KeySize)
}

func cloneKey(k Key) Key {
	k.Secret = bytes.Clone(k.Secret)
	return k
}

// Keys returns copies of the ring's keys, in the order given to NewKeyring or
// stored in the key file, followed by those added by Rotate.
func (k *Keyring) Keys() []Key {
	r := k.cur.Load()
	if r == nil {
		return nil
	}
	out := make([]Key, len(r.keys))
	for i, key := range r.keys {
		out[i] = cloneKey(key)
	}
	return out
}

// Rotate adds a freshly generated key, which seals from now on; older keys keep
// opening the tokens they sealed. If the ring was loaded from a file, the file
// is rewritten atomically first, and on failure the ring is left unchanged, so
// a key never seals tokens that the next restart could not open.
//
// Retiring old keys is RetireKeys' job (or the operator's, for keys from the
// config): a key must outlive the tokens it sealed.
func (k *Keyring) Rotate() (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.cur.Load()
	if old == nil {
		return Key{}, errNoKeys
	}
	key, err := GenerateKey()
	if err != nil {
		return Key{}, err
	}
	for old.has(key.ID) { // 32-bit IDs: astronomically rare
		if key, err = GenerateKey(); err != nil {
			return Key{}, err
		}
	}
	// A clock stepped backwards must not leave an older key sealing: equal
	// Created falls back to order, and the new key is last.
	newestCreated := old.keys[0].Created
	for _, kk := range old.keys {
		if kk.Created.After(newestCreated) {
			newestCreated = kk.Created
		}
	}
	if key.Created.Before(newestCreated) {
		key.Created = newestCreated
	}
	r, err := newRing(append(slices.Clip(old.keys), key))
	if err != nil {
		return Key{}, err
	}
	if k.path != "" {
		if err := writeKeyFile(k.path, r.keys, false); err != nil {
			return Key{}, err
		}
	}
	k.cur.Store(r)
	return cloneKey(key), nil
}
