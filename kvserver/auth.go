package kvserver

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/kvserver/dht"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	grpcpeer "google.golang.org/grpc/peer"
)

// newAuthenticator is the server's user table; watchAuthLoop fills it.
func newAuthenticator() *auth.Authenticator { return auth.NewAuthenticator(bcrypt.DefaultCost, nil) }

// caller returns the namespace a key operation runs in: the id of its
// token's user (the name for a user record older than ids) when the
// cluster has authentication, empty otherwise, or a front door's namespace
// that a cluster member asks for. The token is checked here, with no round
// trip to etcd.
func (s *Server) caller(ctx context.Context, h *kvpb.RequestHeader) ([]byte, error) {
	if ns := h.GetNamespace(); ns != "" {
		return s.frontDoorNS(ctx, ns)
	}
	cur := s.ring.Load()
	if cur == nil || !cur.Auth {
		return nil, nil
	}
	id, err := s.auth.Verify(h.GetToken())
	if err != nil {
		return nil, err
	}
	if !s.rates.allow(id.User) {
		return nil, fmt.Errorf("%w: user %q is over %v requests/s here", ErrRateLimited, id.User, s.cfg.RateLimit)
	}
	return []byte(id.NS), nil
}

// frontDoorNS admits a request for ns from a server's front door: ns must
// be reserved for one (so no user's keys are reachable this way) and the
// caller a cluster member, as for the member-only services (checkCaller).
// The front door has authenticated nobody, so there is no token or user
// rate to check.
func (s *Server) frontDoorNS(ctx context.Context, ns string) ([]byte, error) {
	if ns != dht.Namespace {
		return nil, fmt.Errorf("%w: %q is not a front door's", ErrForbiddenNamespace, auth.Truncate(ns))
	}
	if s.cfg.TLS.Enabled() {
		if role, name, _ := tlsutil.PeerRole(ctx); role != tlsutil.RoleMember {
			return nil, fmt.Errorf("%w: certificate %q (%s) is not a member's", ErrForbiddenNamespace, name, role)
		}
	}
	return []byte(ns), nil
}

// scopedClientID is the request id a write is deduplicated by: the
// client's own in the empty namespace, else a 64-bit SHA-256 of the
// namespace and the client's id, so one user's request id can never match,
// and so answer or suppress, another user's write. The head derives it and
// the chain carries it, so every member and a retry at a new head agree.
func scopedClientID(ns []byte, client uint64) uint64 {
	if len(ns) == 0 || client == 0 {
		return client // 0 marks internal writes, which are not deduplicated
	}
	h := sha256.New()
	h.Write(ns)
	var b [9]byte // 0x00 ends the namespace, as in the storage key
	binary.BigEndian.PutUint64(b[1:], client)
	h.Write(b[:])
	id := binary.BigEndian.Uint64(h.Sum(nil))
	return max(id, 1)
}

// login checks a password and returns a token for the Login RPC.
func (s *Server) login(ctx context.Context, r *kvpb.LoginRequest) (*kvpb.LoginResponse, error) {
	cur := s.ring.Load()
	switch {
	case cur == nil:
		return nil, ErrNotInRing
	case !cur.Auth:
		return nil, ErrAuthDisabled
	}
	from := clientIP(ctx)
	tok, exp, err := s.auth.Login(r.User, r.Password, from)
	if err != nil {
		s.lg.Info("login refused", zap.String("user", auth.Truncate(r.User)), zap.String("from", from), zap.Error(err))
		return nil, err
	}
	// The client routes by the namespace its token resolves to (the
	// user's id), so it is told which.
	id, err := s.auth.Verify(tok)
	if err != nil {
		return nil, err // removed since the password check
	}
	return &kvpb.LoginResponse{Token: tok, ExpiresUnixMs: exp.UnixMilli(), Namespace: id.NS}, nil
}

// clientIP is the caller's IP address, without the port: logins are
// throttled per address, and a client's port changes with each connection.
func clientIP(ctx context.Context) string {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}

// authKeys are the etcd keys watchAuthLoop follows.
type authKeys struct {
	users, key, tombstones string // prefix, key, prefix
}

// watchAuthLoop keeps the user table, the token key and the removed users'
// namespaces in step with etcd, so a removed user's tokens stop working
// here as soon as the removal is seen, and their keys are swept.
func (s *Server) watchAuthLoop() {
	ks := authKeys{etcdkeys.Users(s.cfg.Cluster), etcdkeys.Auth(s.cfg.Cluster), etcdkeys.Tombstones(s.cfg.Cluster)}
	for backoff := 100 * time.Millisecond; s.ctx.Err() == nil; backoff = min(2*backoff, 2*time.Second) {
		rev, err := s.loadAuth(ks)
		if err != nil {
			s.lg.Warn("read users", zap.Error(err))
			s.sleepCtx(backoff)
			continue
		}
		backoff = 100 * time.Millisecond
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		uw := s.etcd.Watch(wctx, ks.users, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		kw := s.etcd.Watch(wctx, ks.key, clientv3.WithRev(rev+1))
		tw := s.etcd.Watch(wctx, ks.tombstones, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		err = s.followAuth(ks, uw, kw, tw)
		wcancel()
		if err != nil && s.ctx.Err() == nil {
			s.lg.Warn("users watch", zap.Error(err))
		}
		s.sleepCtx(backoff)
	}
}

// loadAuth reads every user, the key and the tombstones at one revision
// and installs them.
func (s *Server) loadAuth(ks authKeys) (int64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	resp, err := s.etcd.Txn(ctx).Then(clientv3.OpGet(ks.users, clientv3.WithPrefix()), clientv3.OpGet(ks.key),
		clientv3.OpGet(ks.tombstones, clientv3.WithPrefix(), clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return 0, err
	}
	var removed []string
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		if ns, ok := s.tombstoneNS(kv.Key[len(ks.tombstones):]); ok {
			removed = append(removed, ns)
		}
	}
	if added := s.removed.reset(removed); len(added) > 0 {
		s.lg.Info("sweeping removed users' keys", zap.Strings("namespaces", added))
	}
	users, revs := map[string]auth.User{}, map[string]int64{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		if u, ok := s.decodeUser(kv.Value); ok {
			users[u.Name], revs[u.Name] = u, kv.ModRevision
		}
	}
	var cfg auth.Config
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if cfg, err = auth.UnmarshalConfig(kvs[0].Value); err != nil {
			s.lg.Error("bad auth config in etcd", zap.Error(err))
		}
	}
	s.auth.Reset(cfg, users, revs, resp.Header.Revision)
	return resp.Header.Revision, nil
}

// followAuth applies watch events until a watch fails or ends.
func (s *Server) followAuth(ks authKeys, uw, kw, tw clientv3.WatchChan) error {
	for {
		select {
		case wr, ok := <-tw:
			if !ok || wr.Err() != nil {
				return wr.Err()
			}
			s.followTombstones(len(ks.tombstones), wr.Events)
		case wr, ok := <-uw:
			if !ok || wr.Err() != nil {
				return wr.Err()
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					s.auth.DeleteUser(string(ev.Kv.Key[len(ks.users):]), ev.Kv.ModRevision)
				} else if u, ok := s.decodeUser(ev.Kv.Value); ok {
					s.auth.PutUser(u, ev.Kv.ModRevision)
				}
			}
		case wr, ok := <-kw:
			if !ok || wr.Err() != nil {
				return wr.Err()
			}
			for _, ev := range wr.Events {
				cfg, err := auth.UnmarshalConfig(ev.Kv.Value)
				if ev.Type == clientv3.EventTypeDelete || err != nil {
					cfg = auth.Config{} // no key: refuse every token rather than accept forged ones
				}
				s.auth.SetConfig(cfg, ev.Kv.ModRevision)
			}
		}
	}
}

// followTombstones applies tombstone events to the removed namespaces.
func (s *Server) followTombstones(prefixLen int, evs []*clientv3.Event) {
	for _, ev := range evs {
		ns, ok := s.tombstoneNS(ev.Kv.Key[prefixLen:])
		switch {
		case !ok:
		case ev.Type == clientv3.EventTypeDelete:
			s.removed.remove(ns)
		case s.removed.add(ns):
			s.lg.Info("sweeping removed user's keys", zap.String("namespace", ns))
		}
	}
}

func (s *Server) decodeUser(b []byte) (auth.User, bool) {
	u, err := auth.UnmarshalUser(b)
	if err != nil {
		s.lg.Error("bad user record in etcd", zap.Error(err))
		return auth.User{}, false
	}
	return u, true
}
