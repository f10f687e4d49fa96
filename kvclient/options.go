package kvclient

import (
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/config"
	"go.uber.org/zap"
)

// Config says where the cluster is and how the client calls it: servers or
// etcd endpoints, timeouts, credentials and TLS files. It is a plain
// struct (the binaries fill it with package config/load, which a program
// importing this package does not pull in); start from DefaultConfig.
type Config = config.Client

// DefaultConfig returns the defaults: the cluster `make run` starts, found
// through etcd at 127.0.0.1:2379, 3s to dial, 10s per call.
func DefaultConfig() Config { return config.DefaultClient() }

// Option configures a Client.
type Option func(*Client)

// WithLogger sets the client's logger (default: no logs).
func WithLogger(lg *zap.Logger) Option { return func(c *Client) { c.lg = lg } }

// WithUnaryCalls sends each Put, Get and Delete as its own unary RPC instead
// of on the batched stream (DESIGN §7): slower, kept for comparison and for
// servers without the Batch stream.
func WithUnaryCalls() Option { return func(c *Client) { c.unary = true } }

// WithNamespace runs every call in namespace ns, one a server reserves
// for its front doors (the DHT API's), instead of the user's: the keys
// route by ns, and the client logs in as nobody. Servers accept it only
// from a cluster member (with TLS, a client holding a member certificate).
func WithNamespace(ns string) Option { return func(c *Client) { c.ns = ns } }

// OpOption configures one call.
type OpOption func(*opOptions)

type opOptions struct {
	ttl      time.Duration
	nearest  bool
	servedBy *string
	keysOnly bool
	cond     *kvpb.Condition
	prev     bool
	meta     *Meta
}

// WithTTL makes a put expire ttl after the head applies it.
func WithTTL(ttl time.Duration) OpOption { return func(o *opOptions) { o.ttl = ttl } }

// WithServedBy stores in *id the id of the server that answered a Get or
// Put (kvpb Response.server), say to see which member nearest reads use.
func WithServedBy(id *string) OpOption { return func(o *opOptions) { o.servedBy = id } }

func (o *opOptions) served(resp *kvpb.Response) {
	if o.servedBy != nil {
		*o.servedBy = resp.Server
	}
}

// ReadMode chooses which chain member answers a Get. Both modes are
// linearizable (DESIGN §4).
type ReadMode int

const (
	// Linearizable reads from the chain's tail (the default).
	Linearizable ReadMode = iota
	// Nearest reads from the closest chain member where the key is clean
	// (CRAQ), falling back to the tail for a key with a write in flight.
	// Closest is a member in the client's zone (Config.Zone), else the
	// one nearest its coordinates (Config.Coords), else the one with the
	// lowest measured latency.
	Nearest
)

// WithReadMode selects the member that answers a Get, overriding
// Config.ReadMode.
func WithReadMode(m ReadMode) OpOption { return func(o *opOptions) { o.nearest = m == Nearest } }

// PutResult tells whether a put created the key or overwrote it.
type PutResult int

const (
	// Created means the key did not exist (SUCCESS).
	Created PutResult = iota + 1
	// Updated means a live value was overwritten (UPDATE).
	Updated
)

func (r PutResult) String() string {
	switch r {
	case Created:
		return "SUCCESS"
	case Updated:
		return "UPDATE"
	}
	return "UNKNOWN"
}
