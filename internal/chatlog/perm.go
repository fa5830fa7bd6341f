package chatlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Chat content (spool segments, cursors, local destination files) is private
// to the server's user: files 0600, directories 0700. The modes are given at
// creation, where the umask can only remove bits, so they hold whatever the
// umask.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// tighten removes the group and other permission bits from root and from
// every directory and regular file under it: earlier versions created them
// 0755/0644 (less the umask). Symbolic links are left alone (chmod would
// follow them out of the tree). A root without such bits is taken as already
// done — everything created since is private — so a large tree is walked
// once; root is changed last, so an interrupted walk is repeated at the next
// Open. It keeps going past a file it cannot change and returns the first
// error.
func tighten(root string) error {
	fi, err := os.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			keep(err)
			return nil
		}
		if path == root || !(d.IsDir() || d.Type().IsRegular()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			keep(err)
			return nil
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			keep(os.Chmod(path, perm&^0o077))
		}
		return nil
	})
	keep(err)
	keep(os.Chmod(root, fi.Mode().Perm()&^0o077))
	return first
}
