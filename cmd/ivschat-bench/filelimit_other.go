//go:build !unix

package main

// Windows has no per-process descriptor limit to raise (sockets are handles,
// bounded by memory), so there is nothing to lift and no limit to check
// the planned connection count against.

func raiseFileLimit() {}

// fileLimit returns 0: unknown, so the caller skips its check.
func fileLimit() uint64 { return 0 }
