//go:build !linux

package messaging

import "errors"

// directWrite is false here: flushDirect falls back to a writer goroutine.
const directWrite = false

type iovecs = struct{}

func (c *conn) writeNonblocking(frames [][]byte, _ *flushWorker) (n, total int, err error) {
	return 0, 0, errors.New("messaging: non-blocking writev is only implemented on Linux")
}
