package room

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// qitem is one encoded event waiting for a connection. The frame is shared
// by every connection that gets the event: encoded once.
type qitem struct {
	seq uint64 // room events only; 0 for private events
	f   wsFrame
	n   int // encoded bytes, for hub.send_queue_bytes
}

// prepare encodes an event for queueing.
func prepare(ev Event) qitem {
	f, n := eventFrame(ev)
	return qitem{f: f, n: n}
}

// conn is one WebSocket client in one room: a read pump that dispatches
// frames, and a bounded queue that the hub's shared writers drain (or the
// connection's own write pump, while its socket is backed up or when it
// cannot write without blocking). Nothing the fan-out does can block on
// it: when the queue is full the client is disconnected.
type conn struct {
	hub    *Hub
	lr     *localRoom
	id     Identity
	ip     string
	ws     *websocket.Conn // nil in tests that drive the dispatcher directly
	cork   *corkConn
	writer *writerShard
	slot   int // index in lr.conns; guarded by lr.mu

	cancel     context.CancelFunc
	stopped    atomic.Bool   // set by teardown: the write pump exits
	wake       chan struct{} // capacity 1: work for the write pump
	ping       atomic.Bool
	lastActive atomic.Int64 // unix ns of the last write

	mu        sync.Mutex
	queue     []qitem
	parked    []qitem // events that arrived while holding (join, resume)
	qbytes    int     // bytes in queue
	pbytes    int     // bytes in parked
	holding   bool
	closing   bool
	closeCode int
	closeText string
	closeLast wsFrame       // sent after the queue, before the close frame
	closeSent chan struct{} // closed once the close frame is written (or given up)
	dropQueue bool
	pumping   bool   // a write pump is running (or about to)
	inWriter  bool   // listed on (or being written by) a shard writer
	reason    string // why the connection ends, when the server decided

	// Owned by the read pump.
	frames     bucket
	resumes    bucket
	dropWindow int64 // unix second of the current drop count
	dropped    int
	lastLimit  int64 // unix ns of the last rate_limited error sent
}

func newConn(h *Hub, lr *localRoom, id Identity, ip string) *conn {
	return &conn{hub: h, lr: lr, id: id, ip: ip, wake: make(chan struct{}, 1), holding: true, slot: -1,
		writer: h.writers.shardFor(h), closeSent: make(chan struct{})}
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// push queues an event; it never blocks. It reports whether the event was
// queued. A full queue (hub.send_queue events or hub.send_queue_bytes)
// ends the connection as a slow consumer.
func (c *conn) push(it qitem) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.hub.m.drops.WithLabelValues("closing").Inc()
		return false
	}
	if len(c.queue)+len(c.parked) >= c.hub.cfg.SendQueue || c.overLocked(it.n) {
		c.slowLocked()
		c.mu.Unlock()
		c.wakeUp()
		return false
	}
	if c.holding && it.seq > 0 {
		c.parked = append(c.parked, it)
		c.pbytes += it.n
	} else {
		c.queue = append(c.queue, it)
		c.qbytes += it.n
	}
	a := c.scheduleLocked()
	c.mu.Unlock()
	c.act(a)
	return true
}

// overLocked reports whether n more bytes would pass hub.send_queue_bytes.
func (c *conn) overLocked(n int) bool {
	return c.qbytes+c.pbytes+n > c.hub.cfg.SendQueueBytes
}

// slowLocked ends the connection as a slow consumer, dropping its queue.
func (c *conn) slowLocked() {
	c.closeLocked(CloseSlowConsumer, CodeSlowConsumer, c.hub.slowConsumerMsg, true)
	c.hub.m.drops.WithLabelValues("queue_full").Inc()
}

// action is what must happen for queued work to be written.
type action uint8

const (
	actNone   action = iota
	actSignal        // the running write pump will see it
	actPump          // start a write pump
	actWriter        // list the connection on its shard writer
)

// scheduleLocked, called with c.mu held, decides who writes what is queued:
// the shard writer normally; the connection's own write pump while bytes
// are stalled on a full socket, to close, or when the connection cannot
// write without blocking. At most one of them works on a connection at a
// time, and neither while a join holds it (ServeWS may be writing the
// welcome; release schedules). An idle connection has neither, so it holds
// no goroutine stack for writing.
func (c *conn) scheduleLocked() action {
	switch {
	case c.stopped.Load() || c.holding:
		return actNone
	case c.pumping:
		return actSignal
	case c.inWriter:
		return actNone // the writer looks at the queue again when done
	}
	stalled := c.cork.stalled()
	if len(c.queue) == 0 && !c.closing && !c.ping.Load() && !stalled {
		return actNone
	}
	if c.closing || stalled || !c.cork.nonBlocking() || c.writer == nil {
		c.pumping = true
		c.hub.wg.Add(1)
		return actPump
	}
	c.inWriter = true
	return actWriter
}

func (c *conn) act(a action) {
	switch a {
	case actSignal:
		c.signal()
	case actPump:
		go c.writePump()
	case actWriter:
		c.writer.add(c)
	}
}

// wakeUp makes sure someone looks at the queue.
func (c *conn) wakeUp() {
	c.mu.Lock()
	a := c.scheduleLocked()
	c.mu.Unlock()
	c.act(a)
}

// pushDirect queues past a hold (a reply that must precede the held
// events); it counts against hub.send_queue_bytes like any event.
func (c *conn) pushDirect(it qitem) {
	c.mu.Lock()
	switch {
	case c.closing:
	case c.overLocked(it.n):
		c.slowLocked()
	default:
		c.queue = append(c.queue, it)
		c.qbytes += it.n
	}
	c.mu.Unlock()
	c.wakeUp()
}

func (c *conn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// release queues first (a welcome) and then the held room events newer than
// upTo, which the welcome already covers, and ends the hold. The welcome
// counts against hub.send_queue_bytes: a client that asks for welcomes
// and does not read them is a slow consumer.
func (c *conn) release(first qitem, upTo uint64) {
	c.mu.Lock()
	if !c.closing && first.f != nil && c.overLocked(first.n) {
		c.slowLocked()
	}
	if !c.closing {
		if first.f != nil {
			c.queue = append(c.queue, first)
			c.qbytes += first.n
		}
		for _, it := range c.parked {
			if it.seq == 0 || it.seq > upTo {
				c.queue = append(c.queue, it)
				c.qbytes += it.n
			}
		}
	}
	clear(c.parked)
	c.parked, c.pbytes = nil, 0
	c.holding = false
	c.mu.Unlock()
	if c.cork != nil {
		c.cork.setOnStall(c.wakeUp)
	}
	c.wakeUp()
}

// kick ends the connection after what is queued: last (an error event, may
// be nil), then a close frame with code.
func (c *conn) kick(code int, reason string, last wsFrame) {
	c.mu.Lock()
	c.closeLocked(code, reason, last, false)
	c.mu.Unlock()
	c.wakeUp()
}

func (c *conn) closeLocked(code int, reason string, last wsFrame, drop bool) {
	if c.closing {
		return
	}
	c.closing, c.closeCode, c.closeText, c.closeLast, c.dropQueue = true, code, reason, last, drop
	c.reason = reason
	if drop {
		clear(c.queue)
		clear(c.parked)
		c.queue, c.parked = nil, nil
		c.qbytes, c.pbytes = 0, 0
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *conn) setReason(r string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = r
	}
	c.mu.Unlock()
}

func (c *conn) sendError(ref string, e *Error) {
	c.pushPrivate(errorEvent(ref, e.Code, e.Message))
}

func (c *conn) pushPrivate(ev Event) {
	c.push(prepare(ev))
}

// writeOut is a shard writer's turn on c: everything queued goes out in
// one non-blocking write. It returns the frames written. A connection
// whose socket did not take it all, or that is closing, goes to a write
// pump; one that got more meanwhile is listed again for the next pass.
func (c *conn) writeOut(now time.Time) int {
	c.mu.Lock()
	if c.stopped.Load() || c.pumping {
		c.inWriter = false
		c.mu.Unlock()
		return 0
	}
	if c.closing || c.cork.stalled() {
		c.inWriter = false
		a := c.scheduleLocked()
		c.mu.Unlock()
		c.act(a)
		return 0
	}
	items := c.queue
	c.queue, c.qbytes = nil, 0
	ping := c.ping.Swap(false)
	c.mu.Unlock()

	var err error
	if len(items) > 0 || ping {
		// What the socket does not take stays stalled in the cork, and
		// scheduleLocked below hands the connection to a pump.
		_, err = c.cork.sendFrames(items, ping)
		c.lastActive.Store(now.UnixNano())
	}
	n := len(items)
	clear(items)

	c.mu.Lock()
	if c.queue == nil && cap(items) <= 16 {
		c.queue = items[:0] // reuse the array
	}
	c.inWriter = false
	a := actNone
	if err == nil {
		// left, more queued, or a direct write (a pong) that stalled while
		// this writer had the connection and so could not start a pump.
		a = c.scheduleLocked()
	}
	c.mu.Unlock()
	if err != nil {
		c.setReason("write_error")
		c.ws.Close() // the read pump sees it and tears down
		return n
	}
	if a == actWriter {
		// More arrived while writing: next pass, so that it packs whatever
		// else comes meanwhile.
		c.writer.add(c)
	} else {
		c.act(a)
	}
	return n
}

// pumpLinger is how long a write pump that cannot hand over to the writers
// stays after its last write.
const pumpLinger = 5 * time.Second

// writePump drains the queue with blocking writes, batching what has piled
// up into one write. On a connection the writers can serve it exits once
// the queue and the socket have caught up. Otherwise it waits for more;
// after pumpLinger without work (the hub's viewer tick pokes it) it
// retires, and the next push starts a new one.
func (c *conn) writePump() {
	defer c.hub.wg.Done()
	var spare []qitem
	for {
		if !c.drain(&spare) {
			return // closed, failed or torn down: no pump again
		}
		if c.cork.nonBlocking() {
			c.mu.Lock()
			if len(c.queue) == 0 && !c.closing && !c.ping.Load() && !c.cork.stalled() {
				c.pumping = false // back to the writers
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			continue
		}
		<-c.wake
		if c.stopped.Load() {
			return
		}
		c.mu.Lock()
		if len(c.queue) == 0 && !c.closing && !c.ping.Load() &&
			time.Since(time.Unix(0, c.lastActive.Load())) >= pumpLinger {
			c.pumping = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// drain writes until the queue is empty; false means the pump must end.
func (c *conn) drain(spare *[]qitem) bool {
	for {
		c.mu.Lock()
		items := c.queue
		c.queue, *spare = *spare, nil
		c.qbytes = 0
		closing, code, text, last := c.closing, c.closeCode, c.closeText, c.closeLast
		c.mu.Unlock()
		ping := c.ping.Swap(false)
		if len(items) == 0 && !ping && !closing && !c.cork.stalled() {
			*spare = items
			return !c.stopped.Load()
		}
		if err := c.writeBatch(items, ping); err != nil {
			c.setReason("write_error")
			c.ws.Close() // the read pump sees it and tears down
			return false
		}
		c.lastActive.Store(time.Now().UnixNano())
		c.hub.m.framesOut.Add(float64(len(items)))
		clear(items)
		if cap(items) <= 16 {
			*spare = items[:0]
		}
		if closing {
			c.writeClose(code, text, last)
			return false
		}
	}
}

// writeBatch writes items (after any stalled bytes) with one blocking
// write.
func (c *conn) writeBatch(items []qitem, ping bool) error {
	deadline := time.Now().Add(c.hub.cfg.WriteTimeout)
	err := c.cork.queueFrames(items, ping)
	if ferr := c.cork.flush(deadline); err == nil {
		err = ferr
	}
	return err
}

// writeClose sends the last event and the close frame, then gives the
// client a moment to answer before the read pump gives up on it.
func (c *conn) writeClose(code int, text string, last wsFrame) {
	defer close(c.closeSent)
	if code == 0 {
		return // torn down by the read pump; nothing to say
	}
	deadline := time.Now().Add(time.Second)
	c.cork.queueClose(last, websocket.FormatCloseMessage(code, text))
	_ = c.cork.flush(deadline)
	_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// readPump reads frames until the connection ends, then tears it down.
func (c *conn) readPump(ctx context.Context) {
	defer c.hub.wg.Done()
	reason := c.readLoop(ctx)
	c.teardown(reason)
}

func (c *conn) readLoop(ctx context.Context) string {
	h := c.hub
	c.ws.SetReadLimit(int64(h.cfg.MaxFrame))
	_ = c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongTimeout))
	})
	// Pings are answered through gorilla (pong), whose one Write per
	// control frame corkConn queues in order; a client's close is answered
	// by corkConn itself, which then refuses anything more.
	c.ws.SetPingHandler(c.pong)
	c.ws.SetCloseHandler(func(code int, _ string) error {
		_ = c.cork.writeClose(websocket.FormatCloseMessage(code, ""))
		return nil
	})
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return readErrorReason(err)
		}
		if c.isClosing() {
			if c.flooded() {
				c.discard()
				return "flood"
			}
			// Kicked: ignore the rest until the client's close reply or the
			// short deadline the write pump set.
			continue
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongTimeout))
		now := time.Now().UnixNano()
		if !c.frames.allow(now, h.cfg.FrameRate, h.cfg.FrameBurst) {
			if c.limited(r, now) {
				c.kick(CloseFlood, "flood", h.prepared(errorEvent("", CodeRateLimited, "too many frames")))
			}
			continue
		}
		if mt != websocket.TextMessage {
			h.m.framesIn.WithLabelValues("invalid").Inc()
			c.sendError("", Errorf(CodeBadRequest, "frames must be JSON text"))
			continue
		}
		buf := h.readBufs.Get().(*[]byte)
		n, tooBig, err := readFrame(r, *buf)
		if err != nil {
			h.readBufs.Put(buf)
			return readErrorReason(err)
		}
		if tooBig {
			h.readBufs.Put(buf)
			h.m.framesIn.WithLabelValues("invalid").Inc()
			c.sendError(refOf((*buf)[:n]), Errorf(CodeTooLong, "frame exceeds %d bytes", h.cfg.ReadLimit))
			continue
		}
		h.dispatch(ctx, c, (*buf)[:n])
		h.readBufs.Put(buf)
	}
}

// limited handles a frame over the rate limit: it is dropped, and the client
// hears about it at most once a second. It reports a flood.
func (c *conn) limited(r io.Reader, now int64) bool {
	h := c.hub
	h.m.drops.WithLabelValues("rate_limited").Inc()
	sec := now / 1e9
	if sec != c.dropWindow {
		c.dropWindow, c.dropped = sec, 0
	}
	c.dropped++
	if float64(c.dropped) > float64(h.cfg.FloodFactor)*h.cfg.FrameRate {
		return true
	}
	if now-c.lastLimit >= int64(time.Second) {
		c.lastLimit = now
		var head [512]byte
		n, _ := io.ReadFull(r, head[:])
		c.sendError(refOf(head[:n]), Errorf(CodeRateLimited, "too many frames; slow down"))
	}
	return false
}

// readFrame reads one message into buf (capacity limit+1); a longer message
// is drained and reported as too big.
func readFrame(r io.Reader, buf []byte) (int, bool, error) {
	buf = buf[:cap(buf)]
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, false, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return n, false, err
	}
	return n - 1, true, nil
}

// refOf digs the ref out of a frame that will not be dispatched, so its
// error can still echo it.
func refOf(data []byte) string {
	if h, err := parseFrame(data); err == nil || h.Ref != "" {
		return h.Ref
	}
	// Truncated or broken: walk the top-level keys as far as they parse.
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "ref" {
			if v, err := dec.Token(); err == nil {
				if s, ok := v.(string); ok {
					return s
				}
			}
			return ""
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

func readErrorReason(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return "client_close"
	case errors.Is(err, websocket.ErrReadLimit):
		return "too_big"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "eof"
	default:
		return "read_error"
	}
}

// teardown runs once, from the read pump.
func (c *conn) teardown(readReason string) {
	c.mu.Lock()
	reason := c.reason
	c.closing = true
	c.stopped.Store(true)
	clear(c.queue)
	c.queue, c.qbytes = nil, 0
	c.mu.Unlock()
	if reason == "" {
		reason = readReason
	}
	c.hub.leave(c)
	c.signal() // a running pump sees stopped and exits
	c.cancel()
	c.ws.Close()
	c.hub.m.disconnects.WithLabelValues(reason).Inc()
	c.hub.log.Debug("ws disconnect", "room", c.lr.id, "user", c.id.ID, "reason", reason)
}
