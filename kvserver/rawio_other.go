//go:build !linux

package kvserver

import "net"

// withRawIO returns c: raw socket calls are Linux only (rawio_linux.go).
func withRawIO(c net.Conn) net.Conn { return c }
