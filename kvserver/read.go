package kvserver

import (
	"fmt"
	"time"

	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/chainstore"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// readWait bounds how long a read at the tail waits for the key's write in
// flight to commit.
const readWait = 2 * time.Second

// read serves a read if the node allows it (DESIGN §4): at once when the
// key is clean here, or at the tail once the write in flight on it
// commits. Storage is read under mu, so no later write can show through.
func (c *core) read(p int, rq chainsm.ReadReq) (storage.Record, bool, error) {
	c.mu.Lock()
	tok, w := c.registerLocked(&readCall{p: p, ns: rq.NS, key: rq.Key})
	rq.Token = tok
	serve, prior, err := c.node.Read(c.now(), p, rq)
	if err != nil || serve {
		delete(c.waits, tok)
	}
	if serve {
		val, ok, gerr := chainstore.Read(c.s.store, p, rq.NS, rq.Key, prior, nowMs(), maxClockSkew.Milliseconds())
		c.mu.Unlock()
		return val, ok, gerr
	}
	out := c.drainLocked()
	c.mu.Unlock()
	c.dispatch(out)
	if err != nil {
		return storage.Record{}, false, err
	}
	t := time.NewTimer(readWait)
	defer t.Stop()
	select {
	case a := <-w.ch:
		if a.Err != nil {
			return storage.Record{}, false, a.Err
		}
		return w.rec, w.ok, w.err
	case <-t.C:
		c.forget(tok)
		return storage.Record{}, false, fmt.Errorf("%w: write in flight did not commit within %v", chainsm.ErrNotReady, readWait)
	}
}

// maxClockSkew bounds how far any server's wall clock is from true time
// (so two servers differ by at most twice it): TTL expiry is judged with
// it so that reads stay monotonic (DESIGN §6).
const maxClockSkew = 50 * time.Millisecond

// readStoreLocked reads a key for a client (chainstore.Read).
func (c *core) readStoreLocked(p int, ns, key []byte) (storage.Record, bool, error) {
	return chainstore.Read(c.s.store, p, ns, key, nil, nowMs(), maxClockSkew.Milliseconds())
}
