// Package backup writes and restores an ivschatd data dir as one archive
// (tar.gz, mode 0600) while the server runs. SQLite databases are copied
// with VACUUM INTO, which reads them in one transaction: each copy is a
// consistent snapshot, taken alongside the server's writes (WAL mode) without
// stopping them. Other files (keys, credentials) are copied as they are.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ivschatd/ivschatd/internal/fsutil"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// manifestName is the archive's first entry: what it holds and when it was made.
const manifestName = "ivschatd-backup.json"

// formatVersion is the archive layout this build writes and reads.
const formatVersion = 1

// Manifest describes a backup.
type Manifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Databases were snapshotted with VACUUM INTO; Files were copied.
	Databases []string `json:"databases"`
	Files     []string `json:"files"`
}

// Create backs up dataDir into out: the databases (SQLite files, by name in
// dataDir) and files named that exist. Missing names are skipped (a server
// using PostgreSQL has no ivschatd.db; configured keys leave no key file),
// but an archive with nothing in it is an error. out is written to a
// temporary file next to it and renamed into place, so a failed backup never
// leaves a truncated archive under the final name.
func Create(ctx context.Context, dataDir string, databases, files []string, out string) (Manifest, error) {
	m := Manifest{Version: formatVersion, Created: time.Now().UTC()}
	if fi, err := os.Stat(dataDir); err != nil {
		return m, err
	} else if !fi.IsDir() {
		return m, fmt.Errorf("%s: not a directory", dataDir)
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".ivschatd-backup-*")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(tmpDir)
	snapshots := map[string]string{} // name -> snapshot path
	for _, name := range databases {
		src := filepath.Join(dataDir, name)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		dst := filepath.Join(tmpDir, name)
		if err := snapshot(ctx, src, dst); err != nil {
			return m, fmt.Errorf("%s: %w", src, err)
		}
		snapshots[name] = dst
		m.Databases = append(m.Databases, name)
	}
	// After the databases: the key files change only at rotation, and a
	// key ring at least as new as the store never lacks a key a stored
	// token needs.
	for _, name := range files {
		src := filepath.Join(dataDir, name)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		snapshots[name] = src
		m.Files = append(m.Files, name)
	}
	if len(snapshots) == 0 {
		return m, fmt.Errorf("%s holds none of %s", dataDir, strings.Join(append(slices.Clone(databases), files...), ", "))
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return m, err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	defer f.Close()
	if err := f.Chmod(0o600); err != nil { // keys and credentials inside
		return m, err
	}
	if err := writeArchive(f, m, snapshots); err != nil {
		return m, err
	}
	if err := f.Sync(); err != nil {
		return m, err
	}
	if err := f.Close(); err != nil {
		return m, err
	}
	return m, os.Rename(f.Name(), out)
}

// snapshot copies the SQLite database src into dst with VACUUM INTO and
// checks the copy.
func snapshot(ctx context.Context, src, dst string) error {
	q := url.Values{}
	// Waits out the server's write transactions instead of failing.
	q.Add("_pragma", "busy_timeout(10000)")
	// Not query_only: SQLite counts VACUUM INTO as a write. It writes
	// only dst; src is read in one transaction.
	db, err := sql.Open("sqlite", src+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("VACUUM INTO: %w", err)
	}
	return checkDatabase(ctx, dst)
}

// checkDatabase runs SQLite's integrity check on path.
func checkDatabase(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if result != "ok" {
		return fmt.Errorf("integrity check of the snapshot: %s", result)
	}
	return nil
}

func writeArchive(w io.Writer, m Manifest, files map[string]string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	manifest, _ := json.MarshalIndent(m, "", "  ")
	if err := writeEntry(tw, manifestName, m.Created, int64(len(manifest)), strings.NewReader(string(manifest))); err != nil {
		return err
	}
	for _, name := range append(slices.Clone(m.Databases), m.Files...) {
		if err := copyEntry(tw, name, files[name], m.Created); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func copyEntry(tw *tar.Writer, name, path string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// A key file being replaced (rename) meanwhile is fine: f is the old
	// one, whole. The size is fixed by the header, so the copy is bounded.
	return writeEntry(tw, name, mtime, fi.Size(), f)
}

func writeEntry(tw *tar.Writer, name string, mtime time.Time, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, r, size); err != nil {
		return fmt.Errorf("archiving %s: %w", name, err)
	}
	return nil
}

// Restore extracts the archive in into dataDir, which must not exist or be
// empty, so a restore never mixes with (or overwrites) a live data dir. Only
// the entries the manifest lists are accepted, as plain names, so an
// archive cannot write outside dataDir. On failure dataDir is left empty.
func Restore(ctx context.Context, in, dataDir string) (Manifest, error) {
	var m Manifest
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return m, fmt.Errorf("%s is not empty: restore into a new data dir", dataDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	f, err := os.Open(in)
	if err != nil {
		return m, err
	}
	defer f.Close()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return m, err
	}
	m, err = extract(f, dataDir)
	if err == nil {
		for _, name := range m.Databases {
			if err = checkDatabase(ctx, filepath.Join(dataDir, name)); err != nil {
				err = fmt.Errorf("%s: %w", name, err)
				break
			}
		}
	}
	if err != nil {
		entries, _ := os.ReadDir(dataDir)
		for _, e := range entries {
			os.Remove(filepath.Join(dataDir, e.Name()))
		}
		return m, fmt.Errorf("%s: %w", in, err)
	}
	return m, nil
}

func extract(r io.Reader, dataDir string) (Manifest, error) {
	var m Manifest
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, fmt.Errorf("not an ivschatd backup (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != manifestName || hdr.Size > 1<<20 {
		return m, errors.New("not an ivschatd backup: no manifest first")
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if m.Version != formatVersion {
		return m, fmt.Errorf("backup format version %d; this build reads version %d", m.Version, formatVersion)
	}
	want := append(slices.Clone(m.Databases), m.Files...)
	var got []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, err
		}
		name := hdr.Name
		if hdr.Typeflag != tar.TypeReg || !slices.Contains(want, name) || slices.Contains(got, name) || filepath.Base(name) != name || name == "." || name == ".." {
			return m, fmt.Errorf("unexpected entry %q", name)
		}
		if err := fsutil.WriteNew(filepath.Join(dataDir, name), tr); err != nil {
			return m, err
		}
		got = append(got, name)
	}
	if len(got) != len(want) {
		return m, fmt.Errorf("truncated: %d of the %d files in the manifest", len(got), len(want))
	}
	return m, nil
}
