package room

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

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

// flooded reports a connection closing for a frame flood.
func (c *conn) flooded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && c.closeCode == CloseFlood
}

// discard is the read side of a flooder's last moments: once its close
// frame is written, what it still sends is read raw and thrown away (no
// frame parsing: a client that keeps flooding after 4009 costs a copy, not
// a parse per frame) until it closes or the pump's short read deadline
// passes. Reading on keeps our close from being lost to a reset.
func (c *conn) discard() {
	t := time.NewTimer(c.hub.cfg.WriteTimeout + time.Second)
	defer t.Stop()
	select {
	case <-c.closeSent:
	case <-t.C:
		return
	}
	buf := make([]byte, 32<<10)
	nc := c.ws.UnderlyingConn()
	for {
		if _, err := nc.Read(buf); err != nil {
			return
		}
	}
}

// pong answers a ping, unless the socket is backed up: a client that
// pings and does not read must not pile pongs up in the server's buffer
// (it is a slow consumer, which the send queue deals with).
func (c *conn) pong(data string) error {
	c.mu.Lock()
	backedUp := c.pumping
	c.mu.Unlock()
	if backedUp || c.cork.stalled() {
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	var ne net.Error
	if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
		return nil // as gorilla's default: the read pump sees a dead socket
	}
	return err
}
