package media

import (
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
)

// iceTCPFirstPacket is how long an ICE-TCP connection may stay silent
// before its first STUN binding request: a browser sends one at once, and
// pion's default (30 s) let any client that connects and says nothing hold
// a goroutine and a socket that long — and hold the node's shutdown, since
// the mux waits for its connection handlers when it closes.
const iceTCPFirstPacket = 5 * time.Second

// newICETCPMux is pion's ICE-TCP mux over a listener that closes the
// connections it accepted when it is closed, so that closing the mux never
// waits for a silent client.
func newICETCPMux(log logging.LeveledLogger, ln net.Listener) ice.TCPMux {
	return ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:             &closingListener{Listener: ln, conns: map[net.Conn]struct{}{}},
		Logger:               log,
		ReadBufferSize:       8,
		WriteBufferSize:      4 << 20, // pion's recommendation (a cap; filled only when a peer stalls)
		FirstStunBindTimeout: iceTCPFirstPacket,
	})
}

// closingListener tracks the connections it accepted until they close.
type closingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *closingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// Close stops accepting and closes every connection still open.
func (l *closingListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.(*trackedConn).Conn.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	l    *closingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
