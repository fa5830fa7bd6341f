package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"
)

// frameSplitter takes whole server frames off the front of bytes already
// read, for a reader that cannot block waiting for the rest of a frame (the
// epoll viewers): what it cannot complete is left for the next read.
type frameSplitter struct {
	rd  bytes.Reader
	hdr [ws.MaxHeaderSize - 2]byte
}

// split handles every complete frame at the start of buf with handleFrame
// and returns how many bytes they took. done says the connection ended: a
// close frame, or a frame no server sends (too long, a bad header).
func (s *frameSplitter) split(buf []byte, w frameWriter, onText func([]byte)) (used int, st endState, done bool) {
	for used < len(buf) {
		rest := buf[used:]
		s.rd.Reset(rest)
		h, err := ws.ReadHeaderBuffer(&s.rd, s.hdr[:])
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return used, endState{}, false // the header is not all here yet
		case err != nil:
			return used, endState{err: err}, true
		case h.Length > maxFrameSize:
			return used, endState{err: fmt.Errorf("frame of %d bytes", h.Length)}, true
		}
		headerLen := len(rest) - s.rd.Len()
		if int64(s.rd.Len()) < h.Length {
			return used, endState{}, false // the payload is not all here yet
		}
		end := headerLen + int(h.Length)
		if st, done := handleFrame(h, rest[headerLen:end], w, onText); done {
			return used + end, st, true
		}
		used += end
	}
	return used, endState{}, false
}
