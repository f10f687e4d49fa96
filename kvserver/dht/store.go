package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
)

// Namespace is the namespace of every DHT key. User names must begin with
// a letter or digit and user ids are 16 hex digits (package auth), so no
// user's keys can ever live here, and the removed-user sweep, which takes
// only user names and ids, never touches it.
const Namespace = "_dht"

// Store is where the DHT API keeps its keys.
type Store interface {
	// Put stores value under key for ttl.
	Put(ctx context.Context, key Key, value []byte, ttl time.Duration) error
	// Get returns key's value; found is false for a missing or expired key.
	Get(ctx context.Context, key Key) (value []byte, found bool, err error)
	// MaxValueBytes is the largest value Put accepts.
	MaxValueBytes(ctx context.Context) int
}

// ClientStore is the Store of a kvserver: the kvclient library in
// Namespace, which routes each key to its chain's head or tail, retries
// through failovers and gives each put a request id, so any server
// answers any key and a retried put applies once. The client is made on
// first use, since a server starts its listener before it has a ring.
type ClientStore struct {
	cfg config.Client

	mu     sync.Mutex // guards cli and closed
	cli    *kvclient.Client
	closed bool
}

// NewClientStore returns a ClientStore on the cluster cfg names.
func NewClientStore(cfg config.Client) *ClientStore { return &ClientStore{cfg: cfg} }

// client returns the client, making it when there is none yet.
func (s *ClientStore) client(ctx context.Context) (*kvclient.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, kvclient.ErrClosed
	case s.cli != nil:
		return s.cli, nil
	}
	cli, err := kvclient.New(ctx, s.cfg, kvclient.WithNamespace(Namespace))
	if err != nil {
		return nil, fmt.Errorf("dht: connect to the cluster: %w", err)
	}
	s.cli = cli
	return cli, nil
}

// Put implements Store.
func (s *ClientStore) Put(ctx context.Context, key Key, value []byte, ttl time.Duration) error {
	cli, err := s.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, string(key[:]), value, kvclient.WithTTL(ttl))
	return err
}

// Get implements Store.
func (s *ClientStore) Get(ctx context.Context, key Key) ([]byte, bool, error) {
	cli, err := s.client(ctx)
	if err != nil {
		return nil, false, err
	}
	v, err := cli.Get(ctx, string(key[:]))
	if errors.Is(err, kvclient.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// MaxValueBytes implements Store: the cluster's limit, or MaxValueSize
// when no ring can be read before ctx ends (Put then checks the limit
// itself).
func (s *ClientStore) MaxValueBytes(ctx context.Context) int {
	cli, err := s.client(ctx)
	if err != nil {
		return MaxValueSize
	}
	return cli.Ring().Limits.MaxValueBytes
}

// Close closes the client.
func (s *ClientStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cli == nil {
		return nil
	}
	return s.cli.Close()
}
