package room

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// corkConn wraps a hijacked connection so the write pump can batch frames:
// between cork and flush, gorilla's frame writes (already serialized by
// gorilla's own write lock) land in a pooled buffer, and flush sends them
// with one write. With a queue backed up, that turns N syscalls into one,
// on the server and on the client's reading side. Writes outside a batch
// (the handshake, gorilla's control replies) go straight through.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    *[]byte
}

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		*c.buf = append(*c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// SetWriteDeadline is ignored inside a batch: flush sets its own.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	corked := c.corked
	c.mu.Unlock()
	if corked {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = corkBufs.Get().(*[]byte)
	c.mu.Unlock()
}

// flush ends the batch and writes it with one syscall.
func (c *corkConn) flush(deadline time.Time) error {
	c.mu.Lock()
	buf := c.buf
	c.buf, c.corked = nil, false
	c.mu.Unlock()
	if buf == nil {
		return nil
	}
	var err error
	if len(*buf) > 0 {
		if err = c.Conn.SetWriteDeadline(deadline); err == nil {
			_, err = c.Conn.Write(*buf)
		}
	}
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		corkBufs.Put(buf)
	}
	return err
}

// hijackRecorder hands gorilla a corkConn instead of the raw connection.
type hijackRecorder struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	return w.conn, brw, nil
}
