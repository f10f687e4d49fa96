package resp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
)

// ClientCluster is the Cluster of a kvserver: the kvclient library, which
// routes each key to its chain and retries through failovers, so any
// server answers any key. Connections without a login share one client
// in the namespace of library clients without a login; each user's
// connections share a client logged in as that user, so the servers put
// their keys in the user's namespace exactly as for a library client
// (the token decides it, nothing this front door says). Clients are made
// on first use, since a server starts its listener before it has a ring.
type ClientCluster struct {
	cfg config.Client
	// authOn reports whether the cluster has users; checkPassword checks
	// one on this server (from: the client's IP, for the back-off).
	authOn        func() bool
	checkPassword func(user, password, from string) error

	anon   atomic.Pointer[kvclient.Client]
	mu     sync.Mutex // guards users, closed and the making of anon
	users  map[string]*userClient
	closed bool
}

// userClient is the client of one user and password, shared by the
// connections logged in with them.
type userClient struct {
	cli  *kvclient.Client
	refs int
}

// NewClientCluster returns the Cluster cfg names. authOn and
// checkPassword are the server's: whether the cluster has users, and a
// password check against its user table.
func NewClientCluster(cfg config.Client, authOn func() bool, checkPassword func(user, password, from string) error) *ClientCluster {
	return &ClientCluster{cfg: cfg, authOn: authOn, checkPassword: checkPassword, users: map[string]*userClient{}}
}

// client returns the shared client without a login, making it when there
// is none yet.
func (c *ClientCluster) client(ctx context.Context) (*kvclient.Client, error) {
	if cli := c.anon.Load(); cli != nil {
		return cli, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, kvclient.ErrClosed
	case c.anon.Load() != nil:
		return c.anon.Load(), nil
	}
	cli, err := kvclient.New(ctx, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("ecskv: connect to the cluster: %w", err)
	}
	c.anon.Store(cli)
	return cli, nil
}

// Anonymous implements Cluster.
func (c *ClientCluster) Anonymous() Backend { return clientBackend{get: c.client} }

// AuthRequired implements Cluster.
func (c *ClientCluster) AuthRequired() bool { return c.authOn() }

// MaxArgBytes implements Cluster.
func (c *ClientCluster) MaxArgBytes() int {
	cli := c.anon.Load()
	if cli == nil {
		return 0
	}
	l := cli.Ring().Limits
	return max(l.MaxKeyBytes, l.MaxValueBytes)
}

// Login implements Cluster: the password is checked here (so failed
// logins back off per client address), then the user's shared client is
// made or reused.
func (c *ClientCluster) Login(ctx context.Context, user, password, from string) (Backend, func(), error) {
	if err := c.checkPassword(user, password, from); err != nil {
		switch {
		case errors.Is(err, kvclient.ErrBadCredentials), errors.Is(err, kvclient.ErrBadUser), errors.Is(err, kvclient.ErrBadPassword):
			return nil, nil, fmt.Errorf("%w: %w", ErrBadCredentials, err)
		case errors.Is(err, kvclient.ErrTooManyAttempts):
			return nil, nil, fmt.Errorf("%w: %w", ErrLoginThrottled, err)
		case errors.Is(err, kvclient.ErrAuthDisabled):
			return nil, nil, fmt.Errorf("%w: %w", ErrAuthDisabled, err)
		}
		return nil, nil, err
	}
	h := sha256.Sum256([]byte(password))
	key := user + "\x00" + string(h[:])
	uc, err := c.userClient(ctx, key, user, password)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if uc.refs--; uc.refs == 0 && c.users[key] == uc {
				delete(c.users, key)
				_ = uc.cli.Close()
			}
		})
	}
	cli := uc.cli
	return clientBackend{get: func(context.Context) (*kvclient.Client, error) { return cli, nil }}, release, nil
}

// userClient returns the client of key, with one more reference, making
// it when there is none; it dials and logs in without holding c.mu, so a
// slow login holds up no other.
func (c *ClientCluster) userClient(ctx context.Context, key, user, password string) (*userClient, error) {
	take := func() (*userClient, error) {
		switch uc := c.users[key]; {
		case c.closed:
			return nil, kvclient.ErrClosed
		case uc != nil:
			uc.refs++
			return uc, nil
		}
		return nil, nil
	}
	c.mu.Lock()
	uc, err := take()
	c.mu.Unlock()
	if uc != nil || err != nil {
		return uc, err
	}
	cli, err := kvclient.New(ctx, c.cfg, kvclient.WithCredentials(user, password))
	if err != nil {
		return nil, fmt.Errorf("ecskv: log in as %s: %w", user, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if uc, err = take(); uc != nil || err != nil {
		_ = cli.Close() // another connection made one meanwhile, or Close ran
		return uc, err
	}
	uc = &userClient{cli: cli, refs: 1}
	c.users[key] = uc
	return uc, nil
}

// Close closes every client.
func (c *ClientCluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	if cli := c.anon.Load(); cli != nil {
		errs = append(errs, cli.Close())
	}
	for k, uc := range c.users {
		errs = append(errs, uc.cli.Close())
		delete(c.users, k)
	}
	return errors.Join(errs...)
}
