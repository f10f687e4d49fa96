package kvserver

import (
	"fmt"
	"time"

	"github.com/ecskv/ecskv/kvserver/chainsm"
)

// readWait bounds how long a read at the tail waits for the key's write in
// flight to commit.
const readWait = 2 * time.Second

// read serves a read if the node allows it (DESIGN §4): at once when the
// key is clean here, or at the tail once the write in flight on it
// commits. Storage is read under mu, so no later write can show through.
func (c *core) read(p int, rq chainsm.ReadReq) ([]byte, bool, error) {
	c.mu.Lock()
	tok, w := c.registerLocked(&readCall{p: p, ns: rq.NS, key: rq.Key})
	rq.Token = tok
	serve, err := c.node.Read(c.now(), p, rq)
	if err != nil || serve {
		delete(c.waits, tok)
	}
	if serve {
		rec, ok, gerr := c.s.store.Get(p, rq.NS, rq.Key, nowMs())
		c.mu.Unlock()
		return rec.Value, ok, gerr
	}
	out := c.drainLocked()
	c.mu.Unlock()
	c.dispatch(out)
	if err != nil {
		return nil, false, err
	}
	t := time.NewTimer(readWait)
	defer t.Stop()
	select {
	case a := <-w.ch:
		if a.Err != nil {
			return nil, false, a.Err
		}
		return w.val, w.ok, w.err
	case <-t.C:
		c.forget(tok)
		return nil, false, fmt.Errorf("%w: write in flight did not commit within %v", chainsm.ErrNotReady, readWait)
	}
}
