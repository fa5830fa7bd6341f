package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/fsutil"
)

// credentialsFile is where a generated key pair is kept in the data dir.
const credentialsFile = "credentials.json"

// loadOrCreateCredentials returns the key pair stored in dir, creating one
// (mode 0600) on first start. It is used only when no key is configured, so a
// server never starts without authentication by accident.
func loadOrCreateCredentials(dir string) (key config.AccessKey, path string, created bool, err error) {
	key, path, err = GeneratedCredentials(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, path, false, err
	}
	key = config.AccessKey{AccessKeyID: "AKID" + randomUpper(16), SecretAccessKey: randomSecret()}
	// Only the pair: a generated key has full access, so there is no policy
	// to write.
	data, _ := json.MarshalIndent(struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}{key.AccessKeyID, key.SecretAccessKey}, "", "  ")
	if err := fsutil.WriteNew(path, bytes.NewReader(append(data, '\n'))); err != nil {
		return key, path, false, err
	}
	return key, path, true, nil
}

// GeneratedCredentials reads the key pair the server generated in dir (see
// loadOrCreateCredentials) without creating one; the error wraps
// fs.ErrNotExist when there is none.
func GeneratedCredentials(dir string) (key config.AccessKey, path string, err error) {
	path = filepath.Join(dir, credentialsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return key, path, err
	}
	if err := json.Unmarshal(data, &key); err != nil || key.AccessKeyID == "" || key.SecretAccessKey == "" {
		return key, path, fmt.Errorf("%s is corrupt; delete it to generate a new key pair", path)
	}
	return key, path, nil
}

// reviewSecretFile holds the generated webhook signing secret.
const reviewSecretFile = "review-webhook-secret"

// loadOrCreateReviewSecret returns the webhook signing secret stored in dir,
// creating one (mode 0600) on first start, so webhook receivers can keep
// verifying requests across restarts.
func loadOrCreateReviewSecret(dir string) (secret []byte, path string, err error) {
	path = filepath.Join(dir, reviewSecretFile)
	data, err := os.ReadFile(path)
	if err == nil {
		secret = []byte(strings.TrimSpace(string(data)))
		if len(secret) < 16 {
			return nil, path, fmt.Errorf("%s is too short; delete it to generate a new secret", path)
		}
		return secret, path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, err
	}
	secret = []byte(randomSecret())
	return secret, path, fsutil.WriteNew(path, bytes.NewReader(append(secret, '\n')))
}

func randomUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b)
}

func randomSecret() string {
	b := make([]byte, 30)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b) // 40 characters, like AWS secrets
}
