package kvserver

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawConn is a TCP connection whose reads and writes are raw read(2) and
// write(2) calls, made through the connection's RawConn: the runtime still
// parks the goroutine on the network poller while the socket has nothing
// to read or no room to write (and keeps the deadlines), but a call that
// does not block skips the runtime's syscall path.
//
// Why: that path wakes the runtime's monitor thread (sysmon) whenever it
// sleeps, and a woken monitor polls every 20µs for a millisecond or more.
// A server between two writes is idle long enough for it to sleep, so at
// light load nearly every message read woke it: a third of the servers'
// context switches at 250 writes/s. Raw calls on the sockets (and the WAL,
// storage.Options.RawWALSync) left it asleep: server CPU per write 0.79x
// at 250 writes/s and 0.87x at 1,000 (medians of five pairs), context
// switches per write 11-13% fewer under full load (README, Performance). The calls never block
// (the sockets are non-blocking), so no thread is held.
type rawConn struct {
	net.Conn
	rc syscall.RawConn
}

// withRawIO returns c with raw reads and writes when it is a socket, else
// c itself.
func withRawIO(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{Conn: c, rc: rc}
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			m, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch errno {
			case 0:
				if n = int(m); n == 0 {
					rerr = io.EOF
				}
				return true
			case unix.EINTR:
			case unix.EAGAIN:
				return false // wait until readable
			default:
				rerr = os.NewSyscallError("read", errno)
				return true
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil && err != io.EOF {
		return n, c.opError("read", err)
	}
	return n, err
}

func (c *rawConn) Write(p []byte) (int, error) {
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch errno {
			case 0:
				n += int(m)
			case unix.EINTR:
			case unix.EAGAIN:
				return false // wait until writable
			default:
				werr = os.NewSyscallError("write", errno)
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// opError wraps err as the net package does, so callers (gRPC, TLS) see
// the errors they know: timeouts, closed connections.
func (c *rawConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
