package resp

import (
	"context"
	"errors"
	"strings"
)

// session is one connection's state. Only the connection's goroutine
// touches it.
type session struct {
	srv     *Server
	id      int64
	local   string // host:port the client reached, for CLUSTER SLOTS
	remote  string
	out     replies
	backend Backend // nil until AUTH on a cluster with users
	release func()  // gives back a logged-in backend
	name    string  // CLIENT SETNAME
	cursors cursors
	quit    bool // QUIT: close once the answer is written
}

// exec runs one request and returns the command's metric label and
// result.
func (s *session) exec(args [][]byte) (string, string) {
	c, ok := lookup(&s.out, args)
	if !ok {
		return "unknown", resultRefused
	}
	if !c.noAuth && s.keyspace() == nil {
		s.out.err("NOAUTH Authentication required.")
		return c.name, resultRefused
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.RequestTimeout)
	defer cancel()
	return c.name, c.run(ctx, s, args)
}

// keyspace is the backend key commands use: the logged-in user's, else
// the anonymous one when the cluster has no users, else nil.
func (s *session) keyspace() Backend {
	if s.backend != nil {
		return s.backend
	}
	if s.srv.cluster.AuthRequired() {
		return nil
	}
	return s.srv.cluster.Anonymous()
}

// login authenticates the session as user, replacing any earlier login.
// It writes nothing; the caller answers.
func (s *session) login(ctx context.Context, user, password string) error {
	b, release, err := s.srv.cluster.Login(ctx, user, password, s.remoteIP())
	if err != nil {
		return err
	}
	s.logout()
	s.backend, s.release = b, release
	return nil
}

func (s *session) logout() {
	if s.release != nil {
		s.release()
	}
	s.backend, s.release = nil, nil
}

func (s *session) remoteIP() string {
	if i := strings.LastIndexByte(s.remote, ':'); i >= 0 {
		return strings.Trim(s.remote[:i], "[]")
	}
	return s.remote
}

// failed answers a backend error and returns the result label.
func (s *session) failed(err error) string {
	switch {
	case errors.Is(err, ErrNotInteger):
		s.out.err(errNotInteger)
		return resultRefused
	case errors.Is(err, ErrOverflow):
		s.out.err("ERR increment or decrement would overflow")
		return resultRefused
	case errors.Is(err, context.DeadlineExceeded):
		s.out.err("ERR ecskv: the cluster did not answer within " + s.srv.cfg.RequestTimeout.String())
		return resultError
	}
	s.out.err("ERR " + err.Error())
	return resultError
}

// Redis's shared error texts.
const (
	errNotInteger = "ERR value is not an integer or out of range"
	errSyntax     = "ERR syntax error"
	errWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
)

// cursors maps SCAN's integer cursors to the cluster's opaque ones. The
// newest maxCursors are kept; an older one is refused as invalid.
type cursors struct {
	last  uint64
	m     map[uint64]string
	order []uint64
}

const maxCursors = 1024

func (c *cursors) put(cur string) uint64 {
	if c.m == nil {
		c.m = map[uint64]string{}
	}
	c.last++
	c.m[c.last] = cur
	c.order = append(c.order, c.last)
	if len(c.order) > maxCursors {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	return c.last
}

func (c *cursors) get(n uint64) (string, bool) {
	cur, ok := c.m[n]
	return cur, ok
}
