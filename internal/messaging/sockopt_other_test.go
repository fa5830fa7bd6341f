//go:build !unix

package messaging

import "syscall"

// setRcvBuf is a no-op where SO_RCVBUF cannot be set portably; the
// slow-consumer test then needs more data to fill the socket.
func setRcvBuf(int) func(network, address string, c syscall.RawConn) error {
	return nil
}
