package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ivschatd/ivschatd/internal/config"
)

// credentialsFile is where a generated key pair is kept in the data dir.
const credentialsFile = "credentials.json"

// loadOrCreateCredentials returns the key pair stored in dir, creating one
// (mode 0600) on first start. It is used only when no key is configured, so a
// server never starts without authentication by accident.
func loadOrCreateCredentials(dir string) (key config.AccessKey, path string, created bool, err error) {
	path = filepath.Join(dir, credentialsFile)
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, &key); err != nil || key.AccessKeyID == "" || key.SecretAccessKey == "" {
			return key, path, false, fmt.Errorf("%s is corrupt; delete it to generate a new key pair", path)
		}
		return key, path, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return key, path, false, err
	}
	key = config.AccessKey{AccessKeyID: "AKID" + randomUpper(16), SecretAccessKey: randomSecret()}
	data, _ = json.MarshalIndent(key, "", "  ")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return key, path, false, err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return key, path, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return key, path, false, err
	}
	return key, path, true, f.Close()
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
