package token

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// fixedKey is deterministic so fuzz seeds and failures are reproducible.
func fixedKey(id string, fill byte) Key {
	return Key{ID: id, Secret: bytes.Repeat([]byte{fill}, SecretSize), Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func mustRing(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var t0 = time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)

// typicalClaims is what CreateChatToken mints for a modest request.
func typicalClaims() Claims {
	return Claims{
		ID:                     "AbCdEfGhIjKl",
		RoomARN:                "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6",
		UserID:                 "user-42",
		Capabilities:           []string{"SEND_MESSAGE"},
		Attributes:             map[string]string{"displayName": "Alice"},
		SessionDurationMinutes: 60,
		IssuedAt:               t0,
		TokenExpiresAt:         t0.Add(time.Hour),
		SessionExpiresAt:       t0.Add(time.Hour),
	}
}

// goldenClaims are the claims of the tokens in testdata, by the part of
// their name after the key ID.
var goldenClaims = map[string]Claims{
	"typical": typicalClaims(),
	"all":     allFieldsClaims(time.UTC),
	"empty":   {TokenExpiresAt: t0},
}

// allFieldsClaims sets every field to an awkward value: non-ASCII and NUL
// bytes, an empty attribute key, nanoseconds issued in zone issuedIn, a token
// expiry past UnixNano's range and a session expiry at year 1.
func allFieldsClaims(issuedIn *time.Location) Claims {
	return Claims{
		ID:                     "id",
		RoomARN:                "arn:aws:ivschat:eu-west-1:000000000000:room/abcdefghijkl",
		UserID:                 "ü𝄞 with spaces and \x00 bytes",
		Capabilities:           []string{"SEND_MESSAGE", "DISCONNECT_USER", "DELETE_MESSAGE"},
		Attributes:             map[string]string{"a": "1", "": "empty key", "k": ""},
		SessionDurationMinutes: 180,
		IssuedAt:               time.Date(2025, 1, 2, 3, 4, 5, 999999999, issuedIn),
		TokenExpiresAt:         time.Date(2262, 1, 1, 0, 0, 0, 1, time.UTC),
		SessionExpiresAt:       time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	}
}

// goldenKeys are the keys the tokens in testdata were sealed with.
var goldenKeys = map[string]Key{"k1": fixedKey("k1", 1), "fz": fixedKey("fz", 7)}

type goldenToken struct {
	name, keyID, token string
	claims             Claims
}

// readGolden reads a testdata file of "keyID claimsName<TAB>token" lines.
func readGolden(t testing.TB, file string) []goldenToken {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenToken
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, tok, ok := strings.Cut(line, "\t")
		keyID, claimsName, ok2 := strings.Cut(name, " ")
		c, ok3 := goldenClaims[claimsName]
		if !ok || !ok2 || !ok3 || goldenKeys[keyID].ID == "" {
			t.Fatalf("%s: bad line %q", file, line)
		}
		out = append(out, goldenToken{name: name, keyID: keyID, token: tok, claims: c})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no tokens", file)
	}
	return out
}

// Tokens already held by clients when the server is upgraded keep opening:
// version 1 tokens were sealed by the AES-256-GCM implementation (see the
// file's header), version 2 ones pin today's format for later changes.
func TestOpensGoldenTokens(t *testing.T) {
	for _, file := range []string{"v1-tokens.txt", "v2-tokens.txt"} {
		for _, g := range readGolden(t, file) {
			t.Run(file+"/"+g.name, func(t *testing.T) {
				// Opened by a ring where the key no longer seals, as after a
				// rotation, and by one where it is the only key.
				rotated := mustRing(t, goldenKeys["k1"], goldenKeys["fz"], mustGenerate(t))
				for _, k := range []*Keyring{rotated, mustRing(t, goldenKeys[g.keyID])} {
					got, err := k.Open(g.token, t0)
					if err != nil {
						t.Fatal(err)
					}
					if !sameClaims(got, g.claims) {
						t.Fatalf("claims:\n got %+v\nwant %+v", got, g.claims)
					}
				}
				if _, err := mustRing(t, fixedKey(g.keyID, 0x55)).Open(g.token, t0); !errors.Is(err, ErrMalformed) {
					t.Fatalf("opened with the wrong secret: %v", err)
				}
			})
		}
	}
}

// Seal writes version 2: XChaCha20-Poly1305 with a random 192-bit nonce under
// HKDF-SHA256(secret, info "ivschatd chat token v2 XChaCha20-Poly1305"), so
// that nonces do not repeat however many tokens one key seals. Checked here
// against x/crypto and crypto/hkdf directly, not through the package's code.
func TestSealsVersion2WithXChaCha20Poly1305(t *testing.T) {
	key := fixedKey("k1", 1)
	k := mustRing(t, key)
	c := typicalClaims()
	tok, err := k.Seal(c)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b64.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 2 {
		t.Fatalf("Seal wrote version %d, want 2", raw[0])
	}
	hdr := 2 + int(raw[1])
	if string(raw[2:hdr]) != "k1" {
		t.Fatalf("key ID %q", raw[2:hdr])
	}
	subkey, err := hkdf.Key(sha256.New, key.Secret, nil, "ivschatd chat token v2 XChaCha20-Poly1305", 32)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(subkey)
	if err != nil {
		t.Fatal(err)
	}
	nonce, ct := raw[hdr:hdr+24], raw[hdr+24:]
	pt, err := aead.Open(nil, nonce, ct, raw[:hdr])
	if err != nil {
		t.Fatalf("not XChaCha20-Poly1305 with a 24-byte nonce under the derived key: %v", err)
	}
	got, ok := decodeClaims(pt)
	if !ok || !sameClaims(got, c) {
		t.Fatalf("plaintext decodes to %+v (%v)", got, ok)
	}
	// The secret itself (the version 1 key) must not be the version 2 key.
	if direct, _ := chacha20poly1305.NewX(key.Secret); direct != nil {
		if _, err := direct.Open(nil, nonce, ct, raw[:hdr]); err == nil {
			t.Fatal("version 2 is keyed with the raw secret")
		}
	}
}

// The version byte is authenticated: relabelling a token as the other version
// makes it malformed, never a token decrypted with the other cipher.
func TestVersionIsAuthenticated(t *testing.T) {
	k := mustRing(t, goldenKeys["k1"])
	v2, _ := k.Seal(typicalClaims())
	v1 := readGolden(t, "v1-tokens.txt")[0].token
	for _, tok := range []string{v1, v2} {
		raw, _ := b64.DecodeString(tok)
		for _, v := range []byte{0, 1, 2, 3, 255} {
			if v == raw[0] {
				continue
			}
			raw2 := bytes.Clone(raw)
			raw2[0] = v
			if _, err := k.Open(b64.EncodeToString(raw2), t0); !errors.Is(err, ErrMalformed) {
				t.Errorf("version %d relabelled %d: %v", raw[0], v, err)
			}
		}
	}
}

// sameClaims compares with time.Equal: Open returns times in UTC, so the
// location of the input is not preserved (the instant is, to the nanosecond).
func sameClaims(a, b Claims) bool {
	if !a.IssuedAt.Equal(b.IssuedAt) || !a.TokenExpiresAt.Equal(b.TokenExpiresAt) || !a.SessionExpiresAt.Equal(b.SessionExpiresAt) {
		return false
	}
	a.IssuedAt, a.TokenExpiresAt, a.SessionExpiresAt = time.Time{}, time.Time{}, time.Time{}
	b.IssuedAt, b.TokenExpiresAt, b.SessionExpiresAt = time.Time{}, time.Time{}, time.Time{}
	if len(a.Capabilities) == 0 && len(b.Capabilities) == 0 {
		a.Capabilities, b.Capabilities = nil, nil
	}
	if len(a.Attributes) == 0 && len(b.Attributes) == 0 {
		a.Attributes, b.Attributes = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestRoundTrip(t *testing.T) {
	k := mustRing(t, fixedKey("k1", 1))
	ny, _ := time.LoadLocation("America/New_York")
	if ny == nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	tests := []struct {
		name string
		c    Claims
	}{
		{"typical", typicalClaims()},
		{"empty", Claims{TokenExpiresAt: t0}},
		{"all fields, nanoseconds, other zone", allFieldsClaims(ny)},
		{"negative duration, monotonic clock", Claims{SessionDurationMinutes: -7, IssuedAt: time.Now(), TokenExpiresAt: t0.Add(time.Nanosecond)}},
		{"empty non-nil collections", Claims{Capabilities: []string{}, Attributes: map[string]string{}, TokenExpiresAt: t0}},
		{"max-size user and attributes", Claims{UserID: strings.Repeat("u", 128), Attributes: map[string]string{"k": strings.Repeat("v", 1023)}, TokenExpiresAt: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := k.Seal(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.Open(tok, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !sameClaims(got, tt.c) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.c)
			}
			for _, ts := range []time.Time{got.IssuedAt, got.TokenExpiresAt, got.SessionExpiresAt} {
				if ts.Location() != time.UTC {
					t.Errorf("time %v not in UTC", ts)
				}
			}
			if !got.TokenExpiresAt.IsZero() && got.TokenExpiresAt.Nanosecond() != tt.c.TokenExpiresAt.Nanosecond() {
				t.Errorf("nanoseconds lost")
			}
		})
	}
	// The zero time survives exactly (not just Equal), so IsZero still works.
	tok, _ := k.Seal(Claims{TokenExpiresAt: t0})
	got, err := k.Open(tok, t0)
	if err != nil || !got.IssuedAt.IsZero() || got.IssuedAt != (time.Time{}) {
		t.Fatalf("zero time: %v %v", got.IssuedAt, err)
	}
}

func TestTokenShapeAndSize(t *testing.T) {
	k := mustRing(t, mustGenerate(t))
	seen := map[string]bool{}
	for range 200 {
		tok, err := k.Seal(typicalClaims())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(tok); i++ {
			if !isTokenChar(tok[i]) {
				t.Fatalf("token %q has %q at %d", tok, tok[i], i)
			}
		}
		if len(tok) >= 400 {
			t.Fatalf("typical token is %d characters", len(tok))
		}
		if seen[tok] {
			t.Fatal("two seals gave the same token: nonce reuse?")
		}
		seen[tok] = true
	}
	tok, _ := k.Seal(typicalClaims())
	t.Logf("typical token: %d characters", len(tok))
}

func mustGenerate(t testing.TB) Key {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestTamperingIsMalformed(t *testing.T) {
	k := mustRing(t, fixedKey("k1", 1))
	v2, err := k.Seal(typicalClaims())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("v2", func(t *testing.T) { testTampering(t, k, v2) })
	t.Run("v1", func(t *testing.T) { testTampering(t, k, readGolden(t, "v1-tokens.txt")[0].token) })
}

func testTampering(t *testing.T, k *Keyring, tok string) {
	if _, err := k.Open(tok, t0); err != nil {
		t.Fatalf("control: %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	check := func(t *testing.T, bad string) {
		t.Helper()
		if c, err := k.Open(bad, t0); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Open(%q) = %+v, %v; want ErrMalformed", bad, c, err)
		}
	}
	t.Run("every single-character substitution", func(t *testing.T) {
		b := []byte(tok)
		for i := range b {
			orig := b[i]
			for j := 0; j < len(alphabet); j++ {
				if alphabet[j] == orig {
					continue
				}
				b[i] = alphabet[j]
				check(t, string(b))
			}
			for _, x := range []byte{0, '\n', '\r', '=', '+', '/', ' ', 0x80, 0xff} {
				b[i] = x
				check(t, string(b))
			}
			b[i] = orig
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		for n := 0; n < len(tok); n++ {
			check(t, tok[:n])
			check(t, tok[len(tok)-n:])
		}
	})
	t.Run("extension", func(t *testing.T) {
		for _, s := range []string{tok + "A", tok + "AA", tok + "AAAA", tok + "=", "A" + tok, tok + "\n", " " + tok} {
			check(t, s)
		}
	})
	t.Run("junk", func(t *testing.T) {
		for _, s := range []string{"", "A", "AAAA", strings.Repeat("A", 60), strings.Repeat("_", MaxTokenLength), strings.Repeat("A", MaxTokenLength+1), "not a token", "\x00\x01"} {
			check(t, s)
		}
	})
}

func TestExpired(t *testing.T) {
	k := mustRing(t, fixedKey("k1", 1))
	c := typicalClaims()
	tok, _ := k.Seal(c)
	tests := []struct {
		now  time.Time
		want error
	}{
		{c.IssuedAt, nil},
		{c.TokenExpiresAt, nil}, // the last moment it may be used
		{c.TokenExpiresAt.Add(time.Nanosecond), ErrExpired},
		{c.TokenExpiresAt.Add(24 * time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		got, err := k.Open(tok, tt.now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Open at %v: err %v, want %v", tt.now, err, tt.want)
		}
		if errors.Is(err, ErrMalformed) {
			t.Errorf("expired token must not be ErrMalformed")
		}
		if err != nil && !reflect.DeepEqual(got, Claims{}) {
			t.Errorf("claims returned with error")
		}
	}
}

func TestUnknownKey(t *testing.T) {
	a := mustRing(t, fixedKey("k1", 1))
	sameIDOtherSecret := mustRing(t, fixedKey("k1", 2))
	otherID := mustRing(t, fixedKey("k2", 1))
	tok, _ := a.Seal(typicalClaims())
	for name, k := range map[string]*Keyring{"same ID, other secret": sameIDOtherSecret, "other ID, same secret": otherID} {
		if _, err := k.Open(tok, t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestRotate(t *testing.T) {
	k := mustRing(t, fixedKey("old", 1))
	oldTok, _ := k.Seal(typicalClaims())
	newKey, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Keys(); len(got) != 2 || got[0].ID != "old" || got[1].ID != newKey.ID {
		t.Fatalf("Keys after Rotate = %v", got)
	}
	if _, err := k.Open(oldTok, t0); err != nil {
		t.Fatalf("old token after Rotate: %v", err)
	}
	newTok, _ := k.Seal(typicalClaims())
	if _, err := mustRing(t, fixedKey("old", 1)).Open(newTok, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("new token opened with only the old key: %v", err)
	}
	if _, err := mustRing(t, newKey).Open(newTok, t0); err != nil {
		t.Fatalf("new token does not open with the new key: %v", err)
	}
}

func TestNewestSeals(t *testing.T) {
	older, newer := fixedKey("a", 1), fixedKey("b", 2)
	newer.Created = older.Created.Add(time.Second)
	tie := fixedKey("c", 3) // same Created as older
	tests := []struct {
		name string
		keys []Key
		want string
	}{
		{"newest first", []Key{newer, older}, "b"},
		{"newest last", []Key{older, newer}, "b"},
		{"tie goes to the later", []Key{older, tie}, "c"},
		{"config keys with zero Created", []Key{{ID: "x", Secret: older.Secret}, {ID: "y", Secret: newer.Secret}}, "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, _ := mustRing(t, tt.keys...).Seal(typicalClaims())
			for _, key := range tt.keys {
				_, err := mustRing(t, key).Open(tok, t0)
				if (err == nil) != (key.ID == tt.want) {
					t.Errorf("key %s: %v", key.ID, err)
				}
			}
		})
	}
}

func TestRotateClockBackwards(t *testing.T) {
	future := fixedKey("future", 1)
	future.Created = time.Now().Add(24 * time.Hour)
	k := mustRing(t, future)
	nk, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := k.Seal(typicalClaims())
	if _, err := mustRing(t, nk).Open(tok, t0); err != nil {
		t.Fatalf("rotated key does not seal when the old one is dated in the future: %v", err)
	}
}

func TestNewKeyringErrors(t *testing.T) {
	good := fixedKey("k", 1)
	tests := []struct {
		name string
		keys []Key
	}{
		{"none", nil},
		{"short secret", []Key{{ID: "k", Secret: make([]byte, 16)}}},
		{"empty ID", []Key{{Secret: good.Secret}}},
		{"colon in ID", []Key{{ID: "a:b", Secret: good.Secret}}},
		{"long ID", []Key{{ID: strings.Repeat("a", MaxKeyIDLength+1), Secret: good.Secret}}},
		{"duplicate ID", []Key{good, fixedKey("k", 2)}},
	}
	for _, tt := range tests {
		if _, err := NewKeyring(tt.keys...); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestKeysAreCopies(t *testing.T) {
	key := fixedKey("k", 1)
	k := mustRing(t, key)
	tok, _ := k.Seal(typicalClaims())
	key.Secret[0] ^= 1
	k.Keys()[0].Secret[0] ^= 1
	if _, err := k.Open(tok, t0); err != nil {
		t.Fatalf("mutating caller's key changed the ring: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	key := fixedKey("k-1.a_B", 0xab)
	s := key.SecretString()
	if s != "k-1.a_B:q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=" {
		t.Fatalf("SecretString = %q", s)
	}
	tests := []struct {
		in string
		ok bool
	}{
		{s, true},
		{s + "\n", true},
		{"k:" + strings.Repeat("A", 43), true},        // raw std
		{"k:" + strings.Repeat("_", 43), true},        // raw URL
		{"k:" + strings.Repeat("-", 42) + "A=", true}, // padded URL
		{"k" + strings.Repeat("A", 44), false},        // no colon
		{":" + strings.Repeat("A", 43), false},        // no ID
		{"k:" + strings.Repeat("A", 42), false},       // 31 bytes
		{"k:" + strings.Repeat("A", 44), false},       // 33 bytes
		{"k:not base64!", false},
		{"k k:" + strings.Repeat("A", 43), false},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseKey(%q): %v", tt.in, err)
		}
		if err != nil && strings.Contains(err.Error(), "AAAA") {
			t.Errorf("error quotes the secret: %v", err)
		}
		if tt.in == s && (got.ID != key.ID || !bytes.Equal(got.Secret, key.Secret)) {
			t.Errorf("ParseKey(SecretString) = %#v", got)
		}
	}
	// Logging a key must not leak it.
	for _, out := range []string{fmt.Sprint(key), fmt.Sprintf("%v %+v %#v %s", key, key, key, key), fmt.Sprintf("%+v", struct{ K Key }{key})} {
		if strings.Contains(out, "q6ur") || strings.Contains(out, "171") {
			t.Errorf("formatted key leaks the secret: %s", out)
		}
	}
}

func TestLoadOrCreateKeyring(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	k1, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("created key file has mode %v", st.Mode().Perm())
	}
	tok1, _ := k1.Seal(typicalClaims())

	k2, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Open(tok1, t0); err != nil {
		t.Fatalf("reloaded ring cannot open earlier token: %v", err)
	}
	if !reflect.DeepEqual(k1.Keys(), k2.Keys()) {
		t.Fatalf("reloaded keys differ:\n%#v\n%#v", k1.Keys(), k2.Keys())
	}

	// An operator loosened the mode; Rotate must still write 0600.
	os.Chmod(path, 0o644)
	nk, err := k2.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := k2.Seal(typicalClaims())
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("rotated key file has mode %v", st.Mode().Perm())
	}
	k3, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := k3.Keys(); len(got) != 2 || got[1].ID != nk.ID {
		t.Fatalf("rotation not persisted: %v", got)
	}
	for i, tok := range []string{tok1, tok2} {
		if _, err := k3.Open(tok, t0); err != nil {
			t.Fatalf("token %d after reload: %v", i, err)
		}
	}
	tok3, _ := k3.Seal(typicalClaims())
	if _, err := mustRing(t, nk).Open(tok3, t0); err != nil {
		t.Fatalf("reloaded ring does not seal with the rotated key: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestLoadOrCreateKeyringConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	rings := make([]*Keyring, 8)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() {
			k, err := LoadOrCreateKeyring(path)
			if err != nil {
				t.Error(err)
				return
			}
			rings[i] = k
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, k := range rings[1:] {
		if !reflect.DeepEqual(k.Keys(), rings[0].Keys()) {
			t.Fatal("concurrent creators ended up with different keys")
		}
	}
}

func TestBadKeyFiles(t *testing.T) {
	key := fixedKey("k", 1)
	valid := `{"version":1,"keys":[{"id":"k","secret":"` + key.SecretString()[2:] + `","created":"2025-01-01T00:00:00Z"}]}`
	tests := []struct {
		name, content, wantErr string
	}{
		{"empty", "", "corrupted"},
		{"truncated", valid[:len(valid)-10], "corrupted"},
		{"garbage", "\x00\x01binary", "corrupted"},
		{"newer", `{"version":3,"keys":[],"future":true}`, "newer"},
		{"no version", `{"keys":[]}`, "version"},
		{"version zero", strings.Replace(valid, `"version":1`, `"version":0`, 1), "version"},
		{"no keys", `{"version":1,"keys":[]}`, "no keys"},
		{"unknown field", strings.Replace(valid, `"id"`, `"kid":"x","id"`, 1), "unknown field"},
		{"bad secret", strings.Replace(valid, key.SecretString()[2:], "AAAA", 1), "bytes"},
		{"trailing data", valid + "{}", "corrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			os.WriteFile(path, []byte(tt.content), 0o600)
			_, err := LoadOrCreateKeyring(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.content {
				t.Fatal("bad key file was overwritten")
			}
		})
	}
	t.Run("valid control", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys.json")
		os.WriteFile(path, []byte(valid), 0o600)
		if _, err := LoadOrCreateKeyring(path); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentSealOpenRotate(t *testing.T) {
	k := mustRing(t, fixedKey("k", 1))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				tok, err := k.Seal(typicalClaims())
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Open(tok, t0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := k.Rotate(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func TestSealTooLarge(t *testing.T) {
	k := mustRing(t, fixedKey("k", 1))
	c := Claims{UserID: strings.Repeat("x", MaxTokenLength), TokenExpiresAt: t0}
	if _, err := k.Seal(c); err == nil {
		t.Fatal("sealed a token longer than MaxTokenLength")
	}
	// Just under the limit still seals and opens.
	c.UserID = strings.Repeat("x", MaxTokenLength*3/4-100)
	tok, err := k.Seal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(tok, t0); err != nil {
		t.Fatal(err)
	}
}

func FuzzOpen(f *testing.F) {
	k := mustRing(f, fixedKey("fz", 7), fixedKey("fy", 8))
	for _, c := range []Claims{typicalClaims(), {TokenExpiresAt: t0}, {Capabilities: []string{"a", "b"}, Attributes: map[string]string{"x": "y", "z": ""}, TokenExpiresAt: t0.Add(-time.Hour)}} {
		tok, err := k.Seal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
		f.Add(tok[:len(tok)/2])
	}
	for _, g := range readGolden(f, "v1-tokens.txt") {
		if g.keyID == "fz" {
			f.Add(g.token)
			f.Add(g.token[:len(g.token)-3])
		}
	}
	for _, s := range []string{
		"", "A", "AQJmeg", "AgJmeg", "AwJmeg",
		"AQJmegAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // v1 header, zero nonce and tag
		"AgJmegAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // v2 header, too short for its nonce
		"AgJmegAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"not a token", "====", "\n\r\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.Open(tok, t0)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrExpired) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		again, err := k.Seal(c)
		if err != nil {
			t.Fatalf("re-seal: %v", err)
		}
		if raw, _ := b64.DecodeString(again); len(raw) == 0 || raw[0] != wireVersion {
			t.Fatalf("re-sealed token is not version %d", wireVersion)
		}
		c2, err := k.Open(again, t0)
		if err != nil {
			t.Fatalf("re-open: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-open differs:\n%+v\n%+v", c, c2)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	k := mustRing(b, fixedKey("k", 1))
	c := typicalClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := mustRing(b, fixedKey("k", 1))
	tok, _ := k.Seal(typicalClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenV1 opens a token sealed before version 2 (AES-256-GCM).
func BenchmarkOpenV1(b *testing.B) {
	k := mustRing(b, fixedKey("k1", 1))
	tok := readGolden(b, "v1-tokens.txt")[0].token
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenMalformed(b *testing.B) {
	k := mustRing(b, fixedKey("k", 1))
	tok, _ := k.Seal(typicalClaims())
	bad := tok[:len(tok)-1] + "A"
	if bad == tok {
		bad = tok[:len(tok)-1] + "B"
	}
	b.ReportAllocs()
	for b.Loop() {
		k.Open(bad, t0)
	}
}

// FuzzDecodeClaims reaches the plaintext decoder directly, which FuzzOpen
// cannot (it cannot forge authentic ciphertext): it must not panic, and what
// it accepts must re-encode to the same claims.
func FuzzDecodeClaims(f *testing.F) {
	for _, c := range []Claims{typicalClaims(), {}, {Capabilities: []string{""}, Attributes: map[string]string{"": ""}}} {
		f.Add(encodeClaims(nil, &c))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := decodeClaims(b)
		if !ok {
			return
		}
		c2, ok := decodeClaims(encodeClaims(nil, &c))
		if !ok || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-decode: %v\n%+v\n%+v", ok, c, c2)
		}
	})
}

func TestZeroKeyring(t *testing.T) {
	var k Keyring
	if _, err := k.Seal(typicalClaims()); err == nil {
		t.Error("zero Keyring sealed")
	}
	if _, err := k.Open("AQJrMQ", t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero Keyring Open: %v", err)
	}
	if _, err := k.Rotate(); err == nil {
		t.Error("zero Keyring rotated")
	}
	if k.Keys() != nil {
		t.Error("zero Keyring has keys")
	}
}
