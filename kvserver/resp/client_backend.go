package resp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/kvclient"
)

// clientBackend runs a connection's commands with the client get returns.
type clientBackend struct {
	get func(context.Context) (*kvclient.Client, error)
}

func (b clientBackend) Get(ctx context.Context, key string) ([]byte, error) {
	cli, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	v, err := cli.Get(ctx, key)
	return v, fromClient(err)
}

func (b clientBackend) MGet(ctx context.Context, keys []string) ([][]byte, error) {
	cli, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	for i, r := range cli.MGet(ctx, keys) {
		switch {
		case errors.Is(r.Err, kvclient.ErrNotFound):
		case r.Err != nil:
			return nil, r.Err
		case r.Value == nil:
			out[i] = []byte{} // an empty value is not a missing one
		default:
			out[i] = r.Value
		}
	}
	return out, nil
}

func (b clientBackend) MSet(ctx context.Context, kvs []KV) error {
	cli, err := b.get(ctx)
	if err != nil {
		return err
	}
	in := make([]kvclient.KV, len(kvs))
	for i, kv := range kvs {
		in[i] = kvclient.KV{Key: kv.Key, Value: kv.Value}
	}
	for _, r := range cli.MPut(ctx, in) {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func (b clientBackend) Delete(ctx context.Context, key string) error {
	cli, err := b.get(ctx)
	if err != nil {
		return err
	}
	return fromClient(cli.Delete(ctx, key))
}

func (b clientBackend) Scan(ctx context.Context, prefix, cursor string, count int) ([]string, string, error) {
	cli, err := b.get(ctx)
	if err != nil {
		return nil, "", err
	}
	kvs, next, err := cli.Scan(ctx, prefix, cursor, count, kvclient.WithKeysOnly())
	if err != nil {
		return nil, "", err
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, next, nil
}

// fromClient translates the library's conditions to the Backend's.
func fromClient(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kvclient.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, kvclient.ErrConditionFailed):
		return fmt.Errorf("%w: %w", ErrConditionFailed, err)
	case errors.Is(err, kvclient.ErrNotInteger):
		return fmt.Errorf("%w: %w", ErrNotInteger, err)
	case errors.Is(err, kvclient.ErrOverflow):
		return fmt.Errorf("%w: %w", ErrOverflow, err)
	}
	return err
}

func (b clientBackend) GetEntry(ctx context.Context, key string) (Entry, error) {
	cli, err := b.get(ctx)
	if err != nil {
		return Entry{}, err
	}
	var m kvclient.Meta
	v, err := cli.Get(ctx, key, kvclient.WithMeta(&m))
	if err != nil {
		return Entry{}, fromClient(err)
	}
	return Entry{Value: v, TTL: m.TTL, Version: m.Version}, nil
}

func (b clientBackend) Set(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	cli, err := b.get(ctx)
	if err != nil {
		return SetResult{}, err
	}
	var m kvclient.Meta
	opts := []kvclient.OpOption{kvclient.WithTTL(o.TTL), kvclient.WithMeta(&m)}
	if o.IfAbsent {
		opts = append(opts, kvclient.IfAbsent())
	}
	if o.IfExists {
		opts = append(opts, kvclient.IfExists())
	}
	if o.ReturnPrevious {
		opts = append(opts, kvclient.ReturnPrevious())
	}
	if o.CheckVersion {
		opts = append(opts, kvclient.IfVersion(o.IfVersion))
	}
	_, err = cli.Put(ctx, key, value, opts...)
	res := SetResult{Existed: m.Existed, Previous: m.Previous}
	err = fromClient(err)
	if errors.Is(err, ErrConditionFailed) && o.ReturnPrevious && o.IfAbsent && !res.Existed {
		// NX failed, so a value exists; SET ... NX GET answers it.
		v, gerr := cli.Get(ctx, key)
		if gerr == nil {
			res = SetResult{Existed: true, Previous: v}
		}
	}
	if res.Existed && res.Previous == nil {
		res.Previous = []byte{} // an empty value is not a missing one
	}
	return res, err
}

func (b clientBackend) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	cli, err := b.get(ctx)
	if err != nil {
		return 0, err
	}
	n, err := cli.Incr(ctx, key, delta)
	return n, fromClient(err)
}

func (b clientBackend) Expire(ctx context.Context, key string, ttl time.Duration) error {
	cli, err := b.get(ctx)
	if err != nil {
		return err
	}
	return fromClient(cli.Expire(ctx, key, ttl))
}

func (b clientBackend) Persist(ctx context.Context, key string) error {
	cli, err := b.get(ctx)
	if err != nil {
		return err
	}
	return fromClient(cli.Persist(ctx, key))
}
