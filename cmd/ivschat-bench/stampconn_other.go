//go:build !linux

package main

import "net"

func newStampConn(nc net.Conn) *stampConn { return &stampConn{Conn: nc} }

func (c *stampConn) readWaitFirst(p []byte) (int, error) { return c.Conn.Read(p) }
