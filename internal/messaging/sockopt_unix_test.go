//go:build unix

package messaging

import (
	"syscall"
)

// setRcvBuf shrinks a test client's receive buffer so that a client that
// never reads fills up after a few kilobytes.
func setRcvBuf(n int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
