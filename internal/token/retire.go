package token

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// MarkSealing records in the key file when the ring's sealing key began to
// seal, unless that is already recorded. A server calls it at start, before it
// seals anything: from then on the key before it seals no more tokens, and
// once the token TTL has passed no valid token can need that older key
// (RetireKeys). A ring not loaded from a file is left alone.
func (k *Keyring) MarkSealing(now time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.cur.Load()
	if old == nil {
		return errNoKeys
	}
	if k.path == "" {
		return nil
	}
	keys := slices.Clone(old.keys)
	i := slices.IndexFunc(keys, func(key Key) bool { return key.ID == old.sealer.id })
	if !keys[i].SealingSince.IsZero() {
		return nil
	}
	keys[i].SealingSince = now.UTC()
	r, err := newRing(keys)
	if err != nil {
		return err
	}
	if err := writeKeyFile(k.path, r.keys, false); err != nil {
		return err
	}
	k.cur.Store(r)
	return nil
}

// KeptKey is a key RetireKeys did not remove, and why.
type KeptKey struct {
	Key    Key
	Reason string
}

// ErrKeyStillNeeded is returned by RetireKeys when a key it was asked to
// retire may still be needed to open a valid token.
var ErrKeyStillNeeded = errors.New("token: key still needed")

// RetireKeys removes from the key file at path the keys that no valid token
// can need any more, and returns those removed and those kept with the reason.
//
// A chat token must be used (its WebSocket handshake done) within tokenTTL of
// being sealed; an open connection does not need the key again. So a key is
// needed until tokenTTL after it stopped sealing, which is when the next key
// in sealing order began to seal (SealingSince, recorded by a server's
// MarkSealing). A key whose successors have not sealed yet may still be
// sealing in a running server and is kept, as is the sealing key itself.
//
// With ids, only those keys are considered, and if any of them is still
// needed (or unknown) nothing is removed and the error, wrapping
// ErrKeyStillNeeded, says why. The file is rewritten atomically; a running
// server keeps the keys it loaded until it restarts.
func RetireKeys(path string, tokenTTL time.Duration, now time.Time, ids ...string) (retired []Key, kept []KeptKey, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("token: reading key file: %w", err)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, nil, fmt.Errorf("token: key file %s: %w", path, err)
	}
	r, err := newRing(keys)
	if err != nil {
		return nil, nil, fmt.Errorf("token: key file %s: %w", path, err)
	}
	for _, id := range ids {
		if !r.has(id) {
			return nil, nil, fmt.Errorf("%w: no key %q in %s", ErrKeyStillNeeded, id, path)
		}
	}
	var remaining []Key
	var refused []string
	for i, key := range keys {
		asked := len(ids) == 0 || slices.Contains(ids, key.ID)
		reason := retention(keys, i, r.sealer.id, tokenTTL, now)
		switch {
		case reason == "" && asked:
			retired = append(retired, cloneKey(key))
			continue
		case reason != "" && asked:
			kept = append(kept, KeptKey{Key: cloneKey(key), Reason: reason})
			refused = append(refused, "key "+key.ID+" "+reason)
		}
		remaining = append(remaining, key)
	}
	if len(ids) > 0 && len(refused) > 0 {
		return nil, kept, fmt.Errorf("%w: %s", ErrKeyStillNeeded, strings.Join(refused, "; "))
	}
	if len(retired) == 0 {
		return nil, kept, nil
	}
	if err := writeKeyFile(path, remaining, false); err != nil {
		return nil, nil, err
	}
	return retired, kept, nil
}

// retention says why keys[i] must stay, or "" if no valid token can need it.
func retention(keys []Key, i int, sealer string, tokenTTL time.Duration, now time.Time) string {
	key := keys[i]
	if key.ID == sealer {
		return "seals new tokens (it is the newest key)"
	}
	// The key stopped sealing when the first key after it in sealing
	// order began to: the earliest SealingSince among its successors.
	var stopped time.Time
	var waiting []string
	for j, other := range keys {
		newer := other.Created.After(key.Created) || (other.Created.Equal(key.Created) && j > i)
		if !newer {
			continue
		}
		if other.SealingSince.IsZero() {
			waiting = append(waiting, other.ID)
			continue
		}
		if stopped.IsZero() || other.SealingSince.Before(stopped) {
			stopped = other.SealingSince
		}
	}
	if stopped.IsZero() {
		return fmt.Sprintf("may still seal tokens: no server has sealed with a newer key (%s) yet (restart the server to seal with the newest, then retire after --token-ttl)",
			strings.Join(waiting, ", "))
	}
	if until := stopped.Add(tokenTTL); now.Before(until) {
		return fmt.Sprintf("may have sealed tokens that stay valid until %s (it stopped sealing at %s; --token-ttl %v)",
			until.UTC().Format(time.RFC3339), stopped.UTC().Format(time.RFC3339), tokenTTL)
	}
	return ""
}
