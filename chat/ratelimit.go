package chat

import (
	"hash/maphash"
	"sync"
	"time"
)

// limiter is a token bucket per key (room and user), refilled at rate per
// second up to burst. Buckets that have refilled completely are forgotten,
// so memory follows the active users, not every user ever seen.
type limiter struct {
	rate  float64
	burst float64
	seed  maphash.Seed
	parts [16]limiterPart
}

type limiterPart struct {
	mu        sync.Mutex
	buckets   map[string]*tokens
	lastSweep time.Time
}

type tokens struct {
	n    float64
	last time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	l := &limiter{rate: rate, burst: float64(burst), seed: maphash.MakeSeed()}
	for i := range l.parts {
		l.parts[i].buckets = map[string]*tokens{}
	}
	return l
}

// allow takes one token for key; when there is none it reports false and
// how long until there will be.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	p := &l.parts[maphash.String(l.seed, key)%uint64(len(l.parts))]
	p.mu.Lock()
	defer p.mu.Unlock()
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	if now.Sub(p.lastSweep) > full+time.Second {
		for k, b := range p.buckets {
			if now.Sub(b.last) >= full {
				delete(p.buckets, k)
			}
		}
		p.lastSweep = now
	}
	b := p.buckets[key]
	if b == nil {
		b = &tokens{n: l.burst, last: now}
		p.buckets[key] = b
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.n = min(l.burst, b.n+dt.Seconds()*l.rate)
		b.last = now
	}
	if b.n < 1 {
		return false, time.Duration((1 - b.n) / l.rate * float64(time.Second))
	}
	b.n--
	return true, 0
}
