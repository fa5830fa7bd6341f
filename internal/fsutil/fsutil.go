// Package fsutil holds the file operations that secrets and backups need to
// get right once: files only the owner can read, synced before they count as
// written.
package fsutil

import (
	"io"
	"os"
)

// WriteNew creates path with mode 0600 and the contents of r, failing if it
// exists, and syncs it, so that a crash right after cannot leave an empty or
// torn file behind (a secret or a restored database that looks valid).
func WriteNew(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
