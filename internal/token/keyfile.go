package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// keyFileVersion is the format version of key files this build writes; it
// reads this one and the one before. A file with a higher version is refused
// rather than misread or replaced: silently minting a new key would invalidate
// every outstanding token. Version 2 added sealingSince, which older builds
// would refuse as an unknown field; the version bump makes them say why.
const keyFileVersion = 2

// keyFile is the JSON layout of a key file:
//
//	{
//	  "version": 1,
//	  "keys": [
//	    {"id": "9f86d081", "secret": "<32 bytes, standard base64>", "created": "2025-01-02T03:04:05.123456789Z",
//	     "sealingSince": "2025-01-02T03:10:00Z"}
//	  ]
//	}
//
// Operators may edit it (to retire keys, say) while the server is stopped.
type keyFile struct {
	Version int       `json:"version"`
	Keys    []fileKey `json:"keys"`
}

// fileKey mirrors Key field for field (conversions rely on it) with JSON names.
type fileKey struct {
	ID      string    `json:"id"`
	Secret  []byte    `json:"secret"` // encoding/json uses standard base64
	Created time.Time `json:"created"`
	// SealingSince is omitted until a server seals with the key.
	SealingSince time.Time `json:"sealingSince,omitzero"`
}

// LoadOrCreateKeyring loads the keyring stored at path, or, if no file exists
// there, creates one holding a single fresh key. Files are always written with
// mode 0600; an existing file's mode is left as the operator set it. Rotate on
// the returned ring rewrites the file.
//
// A file that exists but cannot be read or parsed, or was written by a newer
// version, is an error: replacing it would invalidate all outstanding tokens.
//
// The file is read once; a Rotate by another process sharing the file is not
// seen, and two processes rotating the same file race (the last write wins).
func LoadOrCreateKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, gerr := GenerateKey()
		if gerr != nil {
			return nil, gerr
		}
		werr := writeKeyFile(path, []Key{key}, true)
		if werr == nil {
			r, rerr := newRing([]Key{key})
			if rerr != nil {
				return nil, rerr
			}
			k := &Keyring{path: path}
			k.cur.Store(r)
			return k, nil
		}
		if !errors.Is(werr, fs.ErrExist) {
			return nil, werr
		}
		// Another process created the file first: use its keys, so both
		// processes seal tokens the other can open.
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("token: reading key file: %w", err)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: %w", path, err)
	}
	r, err := newRing(keys)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: %w", path, err)
	}
	k := &Keyring{path: path}
	k.cur.Store(r)
	return k, nil
}

func parseKeyFile(data []byte) ([]Key, error) {
	// Read the version alone first, so a newer file is reported as such rather
	// than as unknown fields or a type mismatch.
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("corrupted (not JSON): %w", err)
	}
	switch {
	case head.Version == nil:
		return nil, errors.New(`corrupted: no "version"`)
	case *head.Version > keyFileVersion:
		return nil, fmt.Errorf("format version %d was written by a newer ivschatd; this build reads version %d", *head.Version, keyFileVersion)
	case *head.Version != keyFileVersion && *head.Version != keyFileVersion-1:
		return nil, fmt.Errorf("corrupted: unknown format version %d", *head.Version)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt field must not be silently dropped
	var f keyFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("corrupted: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("corrupted: data after the JSON object")
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("holds no keys")
	}
	keys := make([]Key, len(f.Keys))
	for i, fk := range f.Keys {
		keys[i] = Key(fk)
	}
	return keys, nil
}

// writeKeyFile stores keys at path atomically: a temporary file in the same
// directory is written, fsynced and then moved into place, so a crash leaves
// either the old file or the new one, never a torn one that would fail to
// load. With exclusive set, an existing file is not replaced and an error
// wrapping fs.ErrExist is returned instead.
func writeKeyFile(path string, keys []Key, exclusive bool) (err error) {
	f := keyFile{Version: keyFileVersion, Keys: make([]fileKey, len(keys))}
	for i, k := range keys {
		f.Keys[i] = fileKey(k) // a compile error here means Key changed: update the file format
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("token: encoding key file: %w", err)
	}
	data = append(data, '\n')

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("token: writing key file: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // after a rename this fails harmlessly
	}()
	// CreateTemp already uses 0600; set it explicitly since the secret's
	// confidentiality depends on it.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("token: writing key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("token: writing key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("token: writing key file: %w", err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return fmt.Errorf("token: writing key file: %w", err)
	}

	if exclusive {
		// link(2) fails if path exists, unlike rename(2), so two processes
		// creating the file at once cannot overwrite each other's key.
		err = os.Link(tmpName, path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// Filesystems without hard links: fall back to a plain rename,
			// accepting the (startup-only) race.
			if _, serr := os.Lstat(path); serr == nil {
				return fmt.Errorf("token: creating key file: %w", fs.ErrExist)
			}
			err = os.Rename(tmpName, path)
		}
	} else {
		err = os.Rename(tmpName, path)
	}
	if err != nil {
		return fmt.Errorf("token: creating key file: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. Best effort: some platforms cannot open or
// fsync a directory, and the data itself is already on disk.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
