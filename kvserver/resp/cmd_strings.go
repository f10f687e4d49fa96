package resp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// stringCommands are the key commands: Redis's string type, the only one
// a key-value store has.
func stringCommands() []*command {
	multi := func(name string, arity int, flags []string, run handler) *command {
		c := keyCmd(name, arity, flags, run)
		c.last = -1
		return c
	}
	mset := multi("mset", -3, flagsWrite, cmdMSet)
	mset.step = 2
	return []*command{
		keyCmd("get", 2, flagsRead, cmdGet),
		keyCmd("set", -3, flagsWrite, cmdSet),
		keyCmd("setnx", 3, flagsWrite, cmdSetNX),
		keyCmd("getset", 3, flagsWrite, cmdGetSet),
		keyCmd("setex", 4, flagsWrite, cmdSetEx(time.Second)),
		keyCmd("psetex", 4, flagsWrite, cmdSetEx(time.Millisecond)),
		keyCmd("strlen", 2, flagsRead, cmdStrlen),
		keyCmd("type", 2, flagsRead, cmdType),
		multi("del", -2, []string{"write"}, cmdDel),
		multi("unlink", -2, []string{"write", "fast"}, cmdDel),
		multi("exists", -2, flagsRead, cmdExists),
		multi("mget", -2, flagsRead, cmdMGet),
		mset,
		keyCmd("incr", 2, flagsWrite, cmdIncr(1, false)),
		keyCmd("decr", 2, flagsWrite, cmdIncr(-1, false)),
		keyCmd("incrby", 3, flagsWrite, cmdIncr(1, true)),
		keyCmd("decrby", 3, flagsWrite, cmdIncr(-1, true)),
		keyCmd("expire", -3, []string{"write", "fast"}, cmdExpire(time.Second, "expire")),
		keyCmd("pexpire", -3, []string{"write", "fast"}, cmdExpire(time.Millisecond, "pexpire")),
		keyCmd("persist", 2, []string{"write", "fast"}, cmdPersist),
		keyCmd("ttl", 2, flagsRead, cmdTTL(time.Second)),
		keyCmd("pttl", 2, flagsRead, cmdTTL(time.Millisecond)),
		plainCmd("scan", -2, []string{"readonly"}, cmdScan),
	}
}

func cmdGet(ctx context.Context, s *session, args [][]byte) string {
	v, err := s.keyspace().Get(ctx, string(args[1]))
	switch {
	case errors.Is(err, ErrNotFound):
		s.out.null()
	case err != nil:
		return s.failed(err)
	default:
		s.out.bulk(v)
	}
	return resultOK
}

func cmdStrlen(ctx context.Context, s *session, args [][]byte) string {
	v, err := s.keyspace().Get(ctx, string(args[1]))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return s.failed(err)
	}
	s.out.int(int64(len(v)))
	return resultOK
}

func cmdType(ctx context.Context, s *session, args [][]byte) string {
	_, err := s.keyspace().Get(ctx, string(args[1]))
	switch {
	case errors.Is(err, ErrNotFound):
		s.out.simple("none")
	case err != nil:
		return s.failed(err)
	default:
		s.out.simple("string")
	}
	return resultOK
}

// setArgs are SET's options, parsed as Redis does: each at most once, NX
// and XX exclusive, one expiry.
type setArgs struct {
	opts    SetOptions
	expiry  bool
	keepTTL bool
}

func parseSet(args [][]byte, now time.Time) (setArgs, string) {
	var a setArgs
	for i := 0; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch {
		case opt == "NX" && !a.opts.IfExists:
			a.opts.IfAbsent = true
		case opt == "XX" && !a.opts.IfAbsent:
			a.opts.IfExists = true
		case opt == "GET":
			a.opts.ReturnPrevious = true
		case (opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT") && !a.expiry && !a.keepTTL && i+1 < len(args):
			i++
			ttl, msg := expiry(opt, args[i], now)
			if msg != "" {
				return a, msg
			}
			a.opts.TTL, a.expiry = ttl, true
		case opt == "KEEPTTL" && !a.expiry:
			a.keepTTL = true
		default:
			return a, errSyntax
		}
	}
	return a, ""
}

// expiry turns SET's EX/PX/EXAT/PXAT argument into a TTL.
func expiry(opt string, arg []byte, now time.Time) (time.Duration, string) {
	n, ok := parseInt(arg)
	if !ok {
		return 0, errNotInteger
	}
	unit := time.Second
	if opt[0] == 'P' {
		unit = time.Millisecond
	}
	if n <= 0 || n > math.MaxInt64/int64(unit) {
		return 0, "ERR invalid expire time in 'set' command"
	}
	ttl := time.Duration(n) * unit
	if strings.HasSuffix(opt, "AT") {
		if ttl = time.Unix(0, 0).Add(ttl).Sub(now); ttl <= 0 {
			ttl = time.Millisecond // already past: expire at once, as Redis deletes it
		}
	}
	return ttl, ""
}

func cmdSet(ctx context.Context, s *session, args [][]byte) string {
	a, msg := parseSet(args[3:], time.Now())
	if msg != "" {
		s.out.err(msg)
		return resultRefused
	}
	set := s.keyspace().Set
	if a.keepTTL {
		set = s.setKeepTTL
	}
	res, err := set(ctx, string(args[1]), args[2], a.opts)
	if err != nil && !errors.Is(err, ErrConditionFailed) {
		return s.failed(err)
	}
	switch {
	case a.opts.ReturnPrevious && res.Existed:
		s.out.bulk(res.Previous)
	case a.opts.ReturnPrevious, err != nil:
		s.out.null()
	default:
		s.out.ok()
	}
	return resultOK
}

// keepTTLTries bounds the read-and-swap rounds of SET ... KEEPTTL while
// other writes to its key keep winning.
const keepTTLTries = 16

// setKeepTTL is SET ... KEEPTTL: it reads the key's TTL and version, then
// puts under the condition that the version is unchanged, with the TTL
// read (so the key lives the few milliseconds between the two longer).
// NX and XX are decided on what was read, which the version then
// guarantees.
func (s *session) setKeepTTL(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	b := s.keyspace()
	for range keepTTLTries {
		e, err := b.GetEntry(ctx, key)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return SetResult{}, err
		}
		if (o.IfAbsent && found) || (o.IfExists && !found) {
			return SetResult{Existed: found, Previous: e.Value}, ErrConditionFailed
		}
		po := o
		po.TTL, po.IfVersion, po.CheckVersion = e.TTL, e.Version, true
		if e.TTL > 0 && e.TTL < time.Millisecond {
			po.TTL = time.Millisecond // a TTL of 0 would keep the key forever
		}
		po.IfAbsent, po.IfExists = false, false
		res, err := b.Set(ctx, key, value, po)
		if !errors.Is(err, ErrConditionFailed) {
			return res, err
		}
	}
	return SetResult{}, fmt.Errorf("ecskv: SET KEEPTTL lost to other writes of the key %d times", keepTTLTries)
}

func cmdSetNX(ctx context.Context, s *session, args [][]byte) string {
	_, err := s.keyspace().Set(ctx, string(args[1]), args[2], SetOptions{IfAbsent: true})
	switch {
	case errors.Is(err, ErrConditionFailed):
		s.out.int(0)
	case err != nil:
		return s.failed(err)
	default:
		s.out.int(1)
	}
	return resultOK
}

// cmdGetSet is GETSET, SET ... GET's older name.
func cmdGetSet(ctx context.Context, s *session, args [][]byte) string {
	res, err := s.keyspace().Set(ctx, string(args[1]), args[2], SetOptions{ReturnPrevious: true})
	if err != nil {
		return s.failed(err)
	}
	if res.Existed {
		s.out.bulk(res.Previous)
	} else {
		s.out.null()
	}
	return resultOK
}

func cmdSetEx(unit time.Duration) handler {
	return func(ctx context.Context, s *session, args [][]byte) string {
		n, ok := parseInt(args[2])
		if !ok {
			s.out.err(errNotInteger)
			return resultRefused
		}
		if n <= 0 || n > math.MaxInt64/int64(unit) {
			s.out.err("ERR invalid expire time in '" + strings.ToLower(string(args[0])) + "' command")
			return resultRefused
		}
		if _, err := s.keyspace().Set(ctx, string(args[1]), args[3], SetOptions{TTL: time.Duration(n) * unit}); err != nil {
			return s.failed(err)
		}
		s.out.ok()
		return resultOK
	}
}

// fanOut runs op(0..n-1) with at most 64 in flight and waits: the keys of
// DEL and EXISTS go to the cluster together, not one round trip each.
func fanOut(n int, op func(i int)) {
	slots := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			op(i)
		})
	}
	wg.Wait()
}

// countKeys runs op on every key and counts those it reports found; the
// first error other than ErrNotFound wins.
func countKeys(keys [][]byte, op func(key string) error) (int64, error) {
	errs := make([]error, len(keys))
	fanOut(len(keys), func(i int) { errs[i] = op(string(keys[i])) })
	var n int64
	for _, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, ErrNotFound):
			return 0, err
		}
	}
	return n, nil
}

func cmdDel(ctx context.Context, s *session, args [][]byte) string {
	b := s.keyspace()
	n, err := countKeys(args[1:], func(k string) error { return b.Delete(ctx, k) })
	if err != nil {
		return s.failed(err)
	}
	s.out.int(n)
	return resultOK
}

func cmdExists(ctx context.Context, s *session, args [][]byte) string {
	b := s.keyspace()
	n, err := countKeys(args[1:], func(k string) error { _, err := b.Get(ctx, k); return err })
	if err != nil {
		return s.failed(err)
	}
	s.out.int(n)
	return resultOK
}

func cmdMGet(ctx context.Context, s *session, args [][]byte) string {
	keys := make([]string, len(args)-1)
	for i, a := range args[1:] {
		keys[i] = string(a)
	}
	vals, err := s.keyspace().MGet(ctx, keys)
	if err != nil {
		return s.failed(err)
	}
	s.out.array(len(vals))
	for _, v := range vals {
		if v == nil {
			s.out.null()
		} else {
			s.out.bulk(v)
		}
	}
	return resultOK
}

func cmdMSet(ctx context.Context, s *session, args [][]byte) string {
	if len(args)%2 != 1 {
		s.out.err("ERR wrong number of arguments for 'mset' command")
		return resultRefused
	}
	kvs := make([]KV, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		kvs = append(kvs, KV{Key: string(args[i]), Value: args[i+1]})
	}
	if err := s.keyspace().MSet(ctx, kvs); err != nil {
		return s.failed(err)
	}
	s.out.ok()
	return resultOK
}

// cmdIncr is INCR and DECR (sign, no argument) and INCRBY and DECRBY.
func cmdIncr(sign int64, withArg bool) handler {
	return func(ctx context.Context, s *session, args [][]byte) string {
		delta := sign
		if withArg {
			n, ok := parseInt(args[2])
			if !ok {
				s.out.err(errNotInteger)
				return resultRefused
			}
			if sign < 0 && n == math.MinInt64 {
				s.out.err("ERR decrement would overflow")
				return resultRefused
			}
			delta = sign * n
		}
		v, err := s.keyspace().Incr(ctx, string(args[1]), delta)
		if err != nil {
			return s.failed(err)
		}
		s.out.int(v)
		return resultOK
	}
}

// cmdExpire is EXPIRE and PEXPIRE. A TTL of 0 or less deletes the key, as
// in Redis.
func cmdExpire(unit time.Duration, name string) handler {
	return func(ctx context.Context, s *session, args [][]byte) string {
		cond, msg := parseExpireFlags(args[3:]) // first, as in Redis
		if msg != "" {
			s.out.err(msg)
			return resultRefused
		}
		n, ok := parseInt(args[2])
		if !ok {
			s.out.err(errNotInteger)
			return resultRefused
		}
		if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
			s.out.err("ERR invalid expire time in '" + name + "' command")
			return resultRefused
		}
		key, b, ttl := string(args[1]), s.keyspace(), time.Duration(n)*unit
		if cond != (expireCond{}) {
			return s.expireIf(ctx, key, ttl, cond)
		}
		var err error
		if n <= 0 {
			err = b.Delete(ctx, key)
		} else {
			err = b.Expire(ctx, key, ttl)
		}
		return s.intResult(err)
	}
}

// expireCond is EXPIRE's NX, XX, GT and LT.
type expireCond struct{ nx, xx, gt, lt bool }

// parseExpireFlags parses EXPIRE's options as Redis 7 does.
func parseExpireFlags(args [][]byte) (expireCond, string) {
	var c expireCond
	for _, a := range args {
		switch strings.ToUpper(string(a)) {
		case "NX":
			c.nx = true
		case "XX":
			c.xx = true
		case "GT":
			c.gt = true
		case "LT":
			c.lt = true
		default:
			return c, "ERR Unsupported option " + string(a)
		}
	}
	switch {
	case c.nx && (c.xx || c.gt || c.lt):
		return c, "ERR NX and XX, GT or LT options at the same time are not compatible"
	case c.gt && c.lt:
		return c, "ERR GT and LT options at the same time are not compatible"
	}
	return c, ""
}

// holds reports whether cond allows setting ttl on a key whose TTL is cur
// (0: none, which GT and LT take as infinite).
func (c expireCond) holds(cur, ttl time.Duration) bool {
	switch {
	case c.nx && cur != 0, c.xx && cur == 0:
		return false
	case c.gt && (cur == 0 || ttl <= cur):
		return false
	case c.lt && cur != 0 && ttl >= cur:
		return false
	}
	return true
}

// expireIf is EXPIRE with a condition on the current TTL: it reads the
// key's TTL and version and, when the condition holds, puts the same
// value with the new TTL on the condition that the version is unchanged,
// starting over if another write came between. A TTL of 0 or less deletes
// the key once the condition holds.
func (s *session) expireIf(ctx context.Context, key string, ttl time.Duration, cond expireCond) string {
	b := s.keyspace()
	for range keepTTLTries {
		e, err := b.GetEntry(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			s.out.int(0)
			return resultOK
		case err != nil:
			return s.failed(err)
		case !cond.holds(e.TTL, ttl):
			s.out.int(0)
			return resultOK
		case ttl <= 0:
			return s.intResult(b.Delete(ctx, key))
		}
		_, err = b.Set(ctx, key, e.Value, SetOptions{TTL: ttl, IfVersion: e.Version, CheckVersion: true})
		if !errors.Is(err, ErrConditionFailed) {
			return s.intResult(err)
		}
	}
	return s.failed(fmt.Errorf("ecskv: EXPIRE lost to other writes of the key %d times", keepTTLTries))
}

// intResult answers 1 for success, 0 for ErrNotFound.
func (s *session) intResult(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		s.out.int(0)
	case err != nil:
		return s.failed(err)
	default:
		s.out.int(1)
	}
	return resultOK
}

// cmdPersist answers 0 for a key without an expiry, as Redis does; the
// check and the persist are two calls, so a concurrent EXPIRE may slip
// between them.
func cmdPersist(ctx context.Context, s *session, args [][]byte) string {
	key, b := string(args[1]), s.keyspace()
	e, err := b.GetEntry(ctx, key)
	if err == nil && e.TTL == 0 {
		s.out.int(0)
		return resultOK
	}
	if err == nil {
		err = b.Persist(ctx, key)
	}
	return s.intResult(err)
}

// cmdTTL is TTL (seconds, rounded) and PTTL: -2 for a missing key, -1
// for one without an expiry.
func cmdTTL(unit time.Duration) handler {
	return func(ctx context.Context, s *session, args [][]byte) string {
		e, err := s.keyspace().GetEntry(ctx, string(args[1]))
		ttl := e.TTL
		switch {
		case errors.Is(err, ErrNotFound):
			s.out.int(-2)
		case err != nil:
			return s.failed(err)
		case ttl == 0:
			s.out.int(-1)
		default:
			s.out.int(int64((ttl + unit/2) / unit))
		}
		return resultOK
	}
}
