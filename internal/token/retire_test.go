package token

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A version-1 key file (before sealingSince) still loads; MarkSealing then
// records the sealing key once and writes version 2; RetireKeys counts the
// window from it and refuses unknown keys.
func TestMarkSealingAndRetireKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	k1.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k2.Created = k1.Created.Add(time.Hour)
	v1 := `{"version":1,"keys":[{"id":"` + k1.ID + `","secret":"` + strings.SplitN(k1.SecretString(), ":", 2)[1] + `","created":"2026-01-01T00:00:00Z"},` +
		`{"id":"` + k2.ID + `","secret":"` + strings.SplitN(k2.SecretString(), ":", 2)[1] + `","created":"2026-01-01T01:00:00Z"}]}`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatalf("a version-1 key file: %v", err)
	}
	if _, _, err := RetireKeys(path, time.Minute, time.Now(), k1.ID); !errors.Is(err, ErrKeyStillNeeded) || !strings.Contains(err.Error(), "may still seal") {
		t.Fatalf("retiring before the newer key sealed: %v", err)
	}
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if err := kr.MarkSealing(start); err != nil {
		t.Fatal(err)
	}
	if err := kr.MarkSealing(start.Add(time.Hour)); err != nil { // a restart: already recorded
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"version": 2`) || strings.Count(string(data), "sealingSince") != 1 || !strings.Contains(string(data), "2026-02-01T00:00:00Z") {
		t.Fatalf("key file after MarkSealing:\n%s", data)
	}
	if _, _, err := RetireKeys(path, time.Minute, start.Add(59*time.Second), k1.ID); !errors.Is(err, ErrKeyStillNeeded) || !strings.Contains(err.Error(), "valid until 2026-02-01T00:01:00Z") {
		t.Fatalf("retiring within the window: %v", err)
	}
	if _, _, err := RetireKeys(path, time.Minute, start.Add(time.Hour), "nosuchkey"); !errors.Is(err, ErrKeyStillNeeded) {
		t.Fatalf("retiring an unknown key: %v", err)
	}
	retired, kept, err := RetireKeys(path, time.Minute, start.Add(time.Minute))
	if err != nil || len(retired) != 1 || retired[0].ID != k1.ID || len(kept) != 1 || kept[0].Key.ID != k2.ID {
		t.Fatalf("after the window: retired %v, kept %v, %v", retired, kept, err)
	}
}
