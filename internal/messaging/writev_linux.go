package messaging

import (
	"syscall"
	"unsafe"
)

// iovecs is a flush worker's writev scratch.
type iovecs = []syscall.Iovec

// directWrite reports whether flushDirect's non-blocking writev exists on
// this system.
const directWrite = true

// writeNonblocking writes frames with one writev on the non-blocking socket
// and returns how many of the total bytes the kernel took; n < total (with a
// nil error) means the socket buffer is full. It goes around the netpoller
// on purpose: Control only pins the descriptor, so there is no deadline
// check and no wait, and the caller guarantees (conn.writing) that nothing
// else writes to the socket meanwhile.
func (c *conn) writeNonblocking(frames [][]byte, w *flushWorker) (n, total int, err error) {
	iov := w.iov[:0]
	for _, f := range frames {
		if len(f) == 0 {
			continue
		}
		v := syscall.Iovec{Base: &f[0]}
		v.SetLen(len(f))
		iov = append(iov, v)
		total += len(f)
	}
	w.iov = iov
	if total == 0 {
		return 0, 0, nil
	}
	cerr := c.raw.Control(func(fd uintptr) {
		for {
			r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			switch errno {
			case 0:
				n = int(r)
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
			default:
				err = errno
			}
			return
		}
	})
	clear(iov) // drop the frame pointers
	if cerr != nil {
		return 0, total, cerr
	}
	return n, total, err
}
