package room

import "sync"

// bucket is a token bucket refilled continuously at rate tokens a second up
// to burst. It is a value with no lock: one goroutine owns it.
type bucket struct {
	tokens float64
	last   int64 // unix ns of the last refill; 0 = full
}

func (b *bucket) allow(now int64, rate float64, burst int) bool {
	if b.last == 0 {
		b.tokens, b.last = float64(burst), now
	}
	if dt := now - b.last; dt > 0 {
		b.tokens += float64(dt) / 1e9 * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// ipLimiter counts connections per client address.
type ipLimiter struct {
	max int // 0 = no limit
	mu  sync.Mutex
	n   map[string]int
}

func (l *ipLimiter) acquire(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.n[ip] >= l.max {
		return false
	}
	l.n[ip]++
	return true
}

func (l *ipLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] <= 1 {
		delete(l.n, ip)
		return
	}
	l.n[ip]--
}
