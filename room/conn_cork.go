package room

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// corkConn wraps a hijacked connection so that frames can be batched and
// written without blocking. The hub's frames (room/frame.go) are appended
// to a pooled buffer and go out together: N frames, one syscall.
//
// sendFrames is the writers' turn: one non-blocking send. Whatever the
// socket did not take stays in the buffer ("stalled"), every later write
// queues behind it, and the connection's own write pump sends the rest
// with flush, which blocks up to the write deadline. So a slow client costs
// its own goroutine, never a shared writer. Writes through gorilla (the
// handshake, the welcome, pongs) go straight through, non-blocking as well
// once the connection has an owner to tell about a stall, or queue behind
// a batch in progress. After the close frame nothing more is written.
type corkConn struct {
	net.Conn
	raw syscall.RawConn // nil: no non-blocking writes (e.g. TLS): pumps only

	mu      sync.Mutex
	corked  bool    // a batch is open or a pump is writing: writes queue in buf
	buf     *[]byte // bytes not yet on the wire, in order; nil = none
	onStall func()  // a direct write left bytes in buf: start a pump
	closed  bool    // a close frame is queued or written: nothing may follow
	// deadline is the last one gorilla asked for. With raw writes the
	// socket itself has no deadline except during a blocking write: an
	// expired one would fail every later non-blocking write.
	deadline time.Time
}

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func putCorkBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}
}

func newCorkConn(nc net.Conn) *corkConn {
	c := &corkConn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok && nonBlockingWrites {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
	return c
}

// nonBlocking reports whether the writers may serve this connection.
func (c *corkConn) nonBlocking() bool { return c != nil && c.raw != nil }

// Read reads with a raw read(2) where it can (see readNow), with the
// errors net.Conn's Read would give.
func (c *corkConn) Read(p []byte) (int, error) {
	if c.raw == nil {
		return c.Conn.Read(p)
	}
	n, err := readNow(c.raw, p)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	}
	return n, err
}

func (c *corkConn) Write(p []byte) (int, error) { return c.write(p, false) }

// write is Write; closing marks p as the close frame, in the same critical
// section that queues or writes it, so that nothing can follow it.
func (c *corkConn) write(p []byte, closing bool) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, errCloseSent
	}
	c.closed = closing
	if c.corked || c.buf != nil {
		c.appendLocked(p)
		c.mu.Unlock()
		return len(p), nil
	}
	if c.raw != nil && c.onStall != nil {
		n, err := writeNow(c.raw, p)
		if err != nil || n == len(p) {
			c.mu.Unlock()
			return n, err
		}
		c.appendLocked(p[n:])
		stall := c.onStall
		c.mu.Unlock()
		stall()
		return len(p), nil
	}
	deadline := c.deadline
	c.mu.Unlock()
	if c.raw == nil {
		return c.Conn.Write(p)
	}
	return c.blockingWrite(p, deadline)
}

// blockingWrite writes p with a deadline on the socket for just this write.
func (c *corkConn) blockingWrite(p []byte, deadline time.Time) (int, error) {
	if err := c.Conn.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if c.raw != nil && !deadline.IsZero() {
		if derr := c.Conn.SetWriteDeadline(time.Time{}); err == nil {
			err = derr
		}
	}
	return n, err
}

func (c *corkConn) appendLocked(p []byte) {
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
}

// SetWriteDeadline is ignored while writes queue: the flush sets its own.
// With raw writes it only records t for the next blocking write.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	queued := c.corked || c.buf != nil
	if c.raw != nil {
		c.deadline = t
		queued = true
	}
	c.mu.Unlock()
	if queued {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// setOnStall names who sends what a direct non-blocking write left behind.
func (c *corkConn) setOnStall(fn func()) {
	c.mu.Lock()
	c.onStall = fn
	c.mu.Unlock()
}

// appendFramesLocked queues frames (and a ping) behind whatever is queued.
func (c *corkConn) appendFramesLocked(items []qitem, ping bool) error {
	if c.closed {
		return errCloseSent
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	b := *c.buf
	for _, it := range items {
		b = append(b, it.f...)
	}
	if ping {
		b = append(b, pingFrame...)
	}
	*c.buf = b
	return nil
}

// sendFrames is a writer's turn: frames (and a ping) appended to the
// batch, then one non-blocking write. left reports that the socket did not
// take everything (the rest waits in buf for flush).
func (c *corkConn) sendFrames(items []qitem, ping bool) (left bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.appendFramesLocked(items, ping); err != nil {
		c.corked = false
		return false, err
	}
	return c.flushNowLocked()
}

// queueFrames opens a batch with frames (and a ping) for flush.
func (c *corkConn) queueFrames(items []qitem, ping bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = true
	return c.appendFramesLocked(items, ping)
}

// queueClose opens a batch with last (if any) and the close frame; after
// it nothing more is written.
func (c *corkConn) queueClose(last wsFrame, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = true
	if c.closed {
		return
	}
	_ = c.appendFramesLocked([]qitem{{f: last}}, false) // allocates buf; a nil last adds nothing
	*c.buf = append(*c.buf, controlFrame(opClose, payload)...)
	c.closed = true
}

// writeClose answers a client's close: the close frame goes after what is
// queued, and nothing after it.
func (c *corkConn) writeClose(payload []byte) error {
	_, err := c.write(controlFrame(opClose, payload), true)
	return err
}

// stalled reports bytes waiting for a pump.
func (c *corkConn) stalled() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.corked && c.buf != nil
}

// flushNowLocked ends a batch with one non-blocking write; left reports
// that the socket did not take everything (the rest waits in buf for flush).
func (c *corkConn) flushNowLocked() (left bool, err error) {
	c.corked = false
	if c.buf == nil {
		return false, nil
	}
	b := *c.buf
	n, err := writeNow(c.raw, b)
	if err != nil || n == len(b) {
		putCorkBuf(c.buf)
		c.buf = nil
		return false, err
	}
	*c.buf = b[:copy(b, b[n:])]
	return true, nil
}

// flush ends a batch and writes everything queued, blocking up to deadline;
// writes made meanwhile queue and go out in the next round.
func (c *corkConn) flush(deadline time.Time) error {
	for {
		c.mu.Lock()
		buf := c.buf
		c.buf = nil
		if buf == nil {
			c.corked = false
			c.mu.Unlock()
			return nil
		}
		c.corked = true
		c.mu.Unlock()
		_, err := c.blockingWrite(*buf, deadline)
		putCorkBuf(buf)
		if err != nil {
			c.mu.Lock()
			c.corked = false
			if c.buf != nil {
				putCorkBuf(c.buf)
				c.buf = nil
			}
			c.mu.Unlock()
			return err
		}
	}
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
	w.conn = newCorkConn(nc)
	return w.conn, brw, nil
}
