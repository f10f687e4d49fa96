package kvserver

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// maxRateUsers bounds the per-user limiters kept; the least recently seen
// user starts again with a full bucket.
const maxRateUsers = 10000

// userRates limits each user's key operations on this server. A nil
// *userRates allows everything.
type userRates struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex // guards limiters
	limiters *lru.Cache[string, *rate.Limiter]
}

func newUserRates(perSec float64, burst int) *userRates {
	if perSec <= 0 {
		return nil
	}
	c, _ := lru.New[string, *rate.Limiter](maxRateUsers) // size > 0: cannot fail
	return &userRates{limit: rate.Limit(perSec), burst: burst, limiters: c}
}

func (u *userRates) allow(user string) bool {
	if u == nil {
		return true
	}
	u.mu.Lock()
	l, ok := u.limiters.Get(user)
	if !ok {
		l = rate.NewLimiter(u.limit, u.burst)
		u.limiters.Add(user, l)
	}
	u.mu.Unlock()
	return l.Allow()
}
