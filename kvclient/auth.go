package kvclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// credentials hold who the client logs in as and its current token. On a
// cluster with authentication every key operation carries the token and
// runs in the user's namespace; the client logs in again before the token
// expires, and once more when a server refuses it.
type credentials struct {
	mu       sync.RWMutex // guards every field; held across a login so one runs at a time
	user     string
	password string
	token    string
	ns       string // the namespace the token's keys live in (the user's id)
	renewAt  time.Time
}

// WithCredentials logs in as user with password on a cluster with
// authentication (it overrides the configuration's user and password).
func WithCredentials(user, password string) Option {
	return func(c *Client) { c.creds.user, c.creds.password = user, password }
}

// credentialsFrom fills in the configured user and password unless
// WithCredentials gave them: the password file's first line, else the
// password from the configuration (ECSKV_PASSWORD).
func (cr *credentials) from(cfg Config) error {
	if cr.user != "" || cfg.User == "" {
		return nil
	}
	pw, err := cfg.ReadPassword()
	if err != nil {
		return err
	}
	cr.user, cr.password = cfg.User, pw
	return nil
}

// Login logs in as user now, and as that user from then on.
func (c *Client) Login(ctx context.Context, user, password string) error {
	cr := &c.creds
	cr.mu.Lock()
	defer cr.mu.Unlock()
	prevUser, prevPassword := cr.user, cr.password
	cr.user, cr.password, cr.token = user, password, ""
	if err := c.loginLocked(ctx); err != nil {
		cr.user, cr.password = prevUser, prevPassword
		return err
	}
	return nil
}

// Logout forgets the credentials and the token.
func (c *Client) Logout() {
	cr := &c.creds
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.user, cr.password, cr.token, cr.ns = "", "", "", ""
}

// User returns the user the client logs in as ("" for none).
func (c *Client) User() string {
	c.creds.mu.RLock()
	defer c.creds.mu.RUnlock()
	return c.creds.user
}

// token returns a token that is not about to expire and the namespace
// its keys live in, logging in when needed; stale is a token a server
// refused, to be replaced.
func (c *Client) token(ctx context.Context, stale string) (tok, ns string, err error) {
	cr := &c.creds
	cr.mu.RLock()
	if cr.token != "" && cr.token != stale && time.Now().Before(cr.renewAt) {
		defer cr.mu.RUnlock()
		return cr.token, cr.ns, nil
	}
	cr.mu.RUnlock()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.user == "" {
		return "", "", ErrLoginRequired
	}
	if cr.token != "" && cr.token != stale && time.Now().Before(cr.renewAt) {
		return cr.token, cr.ns, nil
	}
	if err := c.loginLocked(ctx); err != nil {
		return "", "", err
	}
	return cr.token, cr.ns, nil
}

// loginLocked calls Login on the servers of the ring in turn until one
// answers. c.creds.mu must be held.
func (c *Client) loginLocked(ctx context.Context) error {
	cr := &c.creds
	var errs []error
	for _, addr := range c.loginTargets() {
		conn, err := c.conns.get(addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		now := time.Now()
		resp, err := kvpb.NewKVClient(conn).Login(actx, &kvpb.LoginRequest{User: cr.user, Password: cr.password})
		cancel()
		if err == nil {
			// Renew at 80% of the lifetime, so a busy client never sends an expired token.
			life := time.UnixMilli(resp.ExpiresUnixMs).Sub(now)
			cr.token, cr.renewAt, cr.ns = resp.Token, now.Add(life*4/5), resp.Namespace
			if cr.ns == "" {
				cr.ns = cr.user // a server older than user ids: the name
			}
			return nil
		}
		if !retryable(err) {
			return fmt.Errorf("%w (logging in as %s)", kverr.FromStatus(err), cr.user)
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, kverr.FromStatus(err)))
	}
	return fmt.Errorf("%w: login as %s: %w", ErrUnavailable, cr.user, errors.Join(errs...))
}

// loginTargets lists the configured servers, then those of the ring.
func (c *Client) loginTargets() []string {
	out := append([]string(nil), c.cfg.Servers...)
	if rr := c.rings.get(); rr != nil {
		for _, s := range rr.Servers {
			out = append(out, s.Addr)
		}
	}
	return out
}

// unauthenticated reports a server's refusal of the token.
func unauthenticated(err error) bool { return status.Code(err) == codes.Unauthenticated }
