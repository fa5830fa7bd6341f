// Package testlog captures a component's log lines so that tests can check
// what an operator would see, and how often. Only tests import it.
package testlog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Buffer collects log lines; it is safe for the component to write while the
// test reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything logged so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many lines contain all of substrs.
func (b *Buffer) Count(substrs ...string) int {
	n := 0
next:
	for _, line := range strings.Split(b.String(), "\n") {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// Logger returns a text logger at level that writes into b and into also.
func (b *Buffer) Logger(level slog.Level, also ...io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(append([]io.Writer{b}, also...)...), &slog.HandlerOptions{Level: level}))
}
