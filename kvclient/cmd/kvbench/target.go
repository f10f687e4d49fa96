package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ecskv/ecskv/config/load"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// target is one system under test; every workload runs unchanged on each.
type target interface {
	put(ctx context.Context, key string, value []byte) error
	get(ctx context.Context, key string) error
	close() error
}

// errMissing is a read of a key the load phase should have written.
var errMissing = errors.New("key missing")

// openTarget parses URLs such as ecskv://127.0.0.1:2379 (ring from etcd),
// ecskv+server://127.0.0.1:5001, redis://host:port,
// redis-cluster://host:port,host:port and etcd://host:port,host:port.
func openTarget(ctx context.Context, o options) (target, error) {
	raw := o.target
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad --target %q: want scheme://host:port[,host:port]", raw)
	}
	hosts := strings.Split(u.Host, ",")
	switch u.Scheme {
	case "ecskv", "ecskv+server":
		// ECSKV_* variables give certificates and a user for a secure cluster.
		cfg, err := load.Client(nil)
		if err != nil {
			return nil, err
		}
		if o.zone != "" {
			cfg.Zone = o.zone
		}
		if o.coords != nil {
			cfg.Coords = o.coords
		}
		if u.Scheme == "ecskv" {
			cfg.EtcdEndpoints = hosts
		} else {
			cfg.Servers = hosts
		}
		var opts []kvclient.Option
		if o.unary {
			opts = append(opts, kvclient.WithUnaryCalls())
		}
		c, err := kvclient.New(ctx, cfg, opts...)
		if err != nil {
			return nil, err
		}
		t := &ecskvTarget{c: c}
		if o.nearest {
			t.read = []kvclient.OpOption{kvclient.WithReadMode(kvclient.Nearest)}
		}
		return t, nil
	case "redis":
		return &redisTarget{c: redis.NewClient(&redis.Options{Addr: hosts[0], PoolSize: 256})}, nil
	case "redis-cluster":
		return &redisTarget{c: redis.NewClusterClient(&redis.ClusterOptions{Addrs: hosts, PoolSize: 256})}, nil
	case "etcd":
		c, err := clientv3.New(clientv3.Config{Endpoints: hosts, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, err
		}
		return &etcdTarget{c: c}, nil
	}
	return nil, fmt.Errorf("unknown target scheme %q (ecskv, ecskv+server, redis, redis-cluster, etcd)", u.Scheme)
}

type ecskvTarget struct {
	c    *kvclient.Client
	read []kvclient.OpOption
}

func (t *ecskvTarget) put(ctx context.Context, k string, v []byte) error {
	_, err := t.c.Put(ctx, k, v)
	return err
}

func (t *ecskvTarget) get(ctx context.Context, k string) error {
	_, err := t.c.Get(ctx, k, t.read...)
	if errors.Is(err, kvclient.ErrNotFound) {
		return errMissing
	}
	return err
}

func (t *ecskvTarget) close() error { return t.c.Close() }

type redisTarget struct{ c redis.UniversalClient }

func (t *redisTarget) put(ctx context.Context, k string, v []byte) error {
	return t.c.Set(ctx, k, v, 0).Err()
}

func (t *redisTarget) get(ctx context.Context, k string) error {
	err := t.c.Get(ctx, k).Err()
	if errors.Is(err, redis.Nil) {
		return errMissing
	}
	return err
}

func (t *redisTarget) close() error { return t.c.Close() }

type etcdTarget struct{ c *clientv3.Client }

func (t *etcdTarget) put(ctx context.Context, k string, v []byte) error {
	_, err := t.c.Put(ctx, k, string(v))
	return err
}

func (t *etcdTarget) get(ctx context.Context, k string) error {
	resp, err := t.c.Get(ctx, k)
	if err == nil && len(resp.Kvs) == 0 {
		return errMissing
	}
	return err
}

func (t *etcdTarget) close() error { return t.c.Close() }
