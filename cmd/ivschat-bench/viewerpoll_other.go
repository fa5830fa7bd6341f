//go:build !linux

package main

import (
	"bufio"
	"errors"
	"net"
)

// viewerPoller is Linux-only (epoll); elsewhere -readers goroutines is the
// only choice.
type viewerPoller struct{}

func newViewerPoller(*msgBench) (*viewerPoller, error) {
	return nil, errors.New("-readers epoll needs Linux; use -readers goroutines")
}

func (*viewerPoller) add(int, net.Conn, *bufio.Reader) {}
func (*viewerPoller) close()                           {}

const defaultReaders = "goroutines"
