package media

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/logging"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the ICE UDP mux's socket with group-committed writes: every
// viewer's packets leave through this one socket, so instead of one sendto
// per packet, writers copy their datagram into a pooled slot and return; one
// flusher goroutine sends whatever has accumulated with sendmmsg. Idle, a
// batch is one packet and costs one goroutine hand-off; under load batches
// grow by themselves (while the flusher is in the kernel, writers fill the
// next one), which is where the per-packet syscall cost goes away. Where the
// kernel allows it, a run of same-size datagrams to one address (a frame to
// one viewer: see sendQueue) goes as one UDP GSO message, which also pays
// the UDP/IP stack once per run rather than once per packet. The flusher
// lives as long as the socket: Close stops it.
//
// Writes are fire-and-forget, like UDP itself. A datagram the kernel refuses
// is skipped (the rest of the batch still goes), counted, and logged: the
// writer is gone by then, and pion's ICE would only have logged the error
// of a direct send too. Ordering is preserved: one queue, one flusher. A
// full queue blocks writers (like a full socket buffer) rather than
// dropping. Close sends what is queued, then closes the socket; later
// writes fail with net.ErrClosed.
type batchConn struct {
	*net.UDPConn // reads and everything else go straight to the socket

	w batchWriter

	mu      sync.Mutex
	ready   sync.Cond // flusher: queue not empty, or closing
	room    sync.Cond // writers: queue below maxQueued
	queue   []*datagram
	closing bool
	done    chan struct{} // flusher exited

	pool    sync.Pool
	gso     atomic.Bool           // coalesce same-destination runs (UDP_SEGMENT)
	log     logging.LeveledLogger // may be nil
	lastErr atomic.Pointer[error] // last send error
	errs    atomic.Uint64         // datagrams the kernel refused
	sent    atomic.Uint64
	batches atomic.Uint64
}

// batchWriter is what x/net's ipv4.PacketConn and ipv6.PacketConn offer
// (sendmmsg on Linux, one sendmsg per call elsewhere).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

const (
	// maxBatch bounds one sendmmsg call (the kernel caps it at 1024).
	maxBatch = 128
	// maxSegments bounds one GSO group (the kernel allows 64) and
	// maxGSOBytes its size (a UDP datagram's limit).
	maxSegments = 32
	maxGSOBytes = 60000
	// maxQueued bounds what writers may queue ahead of the flusher: a
	// keyframe burst to a few hundred viewers fits.
	maxQueued = 16384
)

type datagram struct {
	addr net.UDPAddr
	ip   [16]byte
	bufs [1][]byte
	buf  [1600]byte
}

var errDatagramTooLarge = errors.New("media: datagram larger than the batch buffer")

// newBatchConn wraps c, a socket bound to one IPv4 or IPv6 address, or to
// the IPv4 wildcard; a dual-stack wildcard socket is not wrapped (nil),
// since sendmmsg there would need v4-mapped addresses.
func newBatchConn(c *net.UDPConn, log logging.LeveledLogger) *batchConn {
	la, ok := c.LocalAddr().(*net.UDPAddr)
	switch {
	case !ok:
		return nil
	case la.IP.To4() != nil:
		return newBatchConnWriter(c, ipv4.NewPacketConn(c), log)
	case !la.IP.IsUnspecified():
		return newBatchConnWriter(c, ipv6.NewPacketConn(c), log)
	}
	return nil
}

func newBatchConnWriter(c *net.UDPConn, w batchWriter, log logging.LeveledLogger) *batchConn {
	b := &batchConn{UDPConn: c, w: w, log: log, done: make(chan struct{})}
	b.gso.Store(gsoSupported(c))
	b.ready.L = &b.mu
	b.room.L = &b.mu
	b.pool.New = func() any { return new(datagram) }
	go b.flushLoop()
	return b
}

// ReadFromAddrPort and WriteToAddrPort make the ICE mux use the
// allocation-free path (ice.AddrPortReaderWriter).
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
}

func (b *batchConn) WriteToAddrPort(p []byte, to netip.AddrPort) (int, error) {
	if len(p) > len(datagram{}.buf) {
		return 0, errDatagramTooLarge
	}
	d := b.pool.Get().(*datagram)
	n := copy(d.buf[:], p)
	d.bufs[0] = d.buf[:n]
	a := to.Addr().Unmap()
	if a.Is4() {
		v := a.As4()
		copy(d.ip[:], v[:])
		d.addr.IP = d.ip[:4]
	} else {
		d.ip = a.As16()
		d.addr.IP = d.ip[:]
	}
	d.addr.Port = int(to.Port())

	b.mu.Lock()
	for len(b.queue) >= maxQueued && !b.closing {
		b.room.Wait()
	}
	if b.closing {
		b.mu.Unlock()
		b.pool.Put(d)
		return 0, net.ErrClosed
	}
	b.queue = append(b.queue, d)
	if len(b.queue) == 1 {
		b.ready.Signal()
	}
	b.mu.Unlock()
	return n, nil
}

func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("not a UDP address")}
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

func (b *batchConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	return b.WriteToAddrPort(p, addr.AddrPort())
}

func (b *batchConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	return b.WriteToAddrPort(p, addr)
}

// Close sends what is queued, stops the flusher and closes the socket.
func (b *batchConn) Close() error {
	b.mu.Lock()
	already := b.closing
	b.closing = true
	b.ready.Signal()
	b.room.Broadcast()
	b.mu.Unlock()
	if !already {
		<-b.done
	}
	return b.UDPConn.Close()
}

func (b *batchConn) flushLoop() {
	defer close(b.done)
	var (
		batch []*datagram
		out   = newBatchOut()
	)
	for {
		b.mu.Lock()
		for len(b.queue) == 0 && !b.closing {
			b.ready.Wait()
		}
		if len(b.queue) == 0 { // closing, nothing left
			b.mu.Unlock()
			return
		}
		batch, b.queue = b.queue, batch[:0]
		b.room.Broadcast()
		b.mu.Unlock()

		for len(batch) > 0 {
			n := min(len(batch), maxBatch)
			b.send(batch[:n], out)
			for i, d := range batch[:n] {
				b.pool.Put(d)
				batch[i] = nil
			}
			batch = batch[n:]
		}
		batch = batch[:0:cap(batch)]
	}
}

// batchOut is the flusher's reusable sendmmsg argument: one message per
// datagram, or per GSO group of datagrams.
type batchOut struct {
	msgs  []ipv4.Message
	segs  []int    // datagrams in each message
	iov   [][]byte // backing for the messages' Buffers
	cmsgs [][]byte // one UDP_SEGMENT control message per message
	one   [][]byte // scratch for resending a group one by one
}

func newBatchOut() *batchOut {
	o := &batchOut{
		msgs:  make([]ipv4.Message, 0, maxBatch),
		segs:  make([]int, 0, maxBatch),
		iov:   make([][]byte, maxBatch),
		cmsgs: make([][]byte, maxBatch),
	}
	for i := range o.cmsgs {
		o.cmsgs[i] = make([]byte, gsoCmsgLen)
	}
	return o
}

// build turns ds into messages. With GSO, a run of datagrams to the same
// address whose sizes are equal (the last may be shorter) becomes one
// message: a video frame's packets to one viewer are such a run.
func (o *batchOut) build(ds []*datagram, gso bool) {
	o.msgs, o.segs = o.msgs[:0], o.segs[:0]
	for i := 0; i < len(ds); {
		d := ds[i]
		size := len(d.bufs[0])
		j, total := i+1, size
		if gso {
			for j < len(ds) && j-i < maxSegments {
				e := ds[j]
				n := len(e.bufs[0])
				if n > size || n == 0 || total+n > maxGSOBytes || e.addr.Port != d.addr.Port || !e.addr.IP.Equal(d.addr.IP) {
					break
				}
				total += n
				j++
				if n < size {
					break // a shorter datagram can only end the group
				}
			}
		}
		m := ipv4.Message{Addr: &d.addr}
		if j-i == 1 {
			m.Buffers = d.bufs[:]
		} else {
			for k := i; k < j; k++ {
				o.iov[k] = ds[k].bufs[0]
			}
			m.Buffers = o.iov[i:j:j]
			m.OOB = putGSOCmsg(o.cmsgs[len(o.msgs)], size)
		}
		o.msgs = append(o.msgs, m)
		o.segs = append(o.segs, j-i)
		i = j
	}
}

// send writes ds, skipping (and recording) any datagram the kernel refuses.
func (b *batchConn) send(ds []*datagram, o *batchOut) {
	o.build(ds, b.gso.Load())
	b.batches.Add(1)
	msgs, segs := o.msgs, o.segs
	for len(msgs) > 0 {
		n, err := b.w.WriteBatch(msgs, 0)
		if n > 0 {
			for _, s := range segs[:n] {
				b.sent.Add(uint64(s))
			}
			msgs, segs = msgs[n:], segs[n:]
		}
		switch {
		case err == nil && n == 0:
			return // cannot happen with a non-empty batch; do not spin
		case err == nil:
		case errors.Is(err, net.ErrClosed):
			b.failedN(err, segs)
			return
		case segs[0] > 1 && gsoRefused(err):
			// The route's device cannot segment: stop grouping and send
			// this group's datagrams one by one.
			b.gso.Store(false)
			if b.log != nil {
				b.log.Warnf("udp batch send: GSO refused (%v), sending datagrams singly", err)
			}
			b.sendSingly(msgs[0], o)
			msgs, segs = msgs[1:], segs[1:]
		default:
			// The message at the head failed; skip it and go on with the
			// rest, as separate sendto calls would have.
			b.failed(err, segs[0])
			msgs, segs = msgs[1:], segs[1:]
		}
	}
}

func (b *batchConn) sendSingly(m ipv4.Message, o *batchOut) {
	for _, buf := range m.Buffers {
		o.one = append(o.one[:0], buf)
		single := []ipv4.Message{{Buffers: o.one, Addr: m.Addr}}
		if _, err := b.w.WriteBatch(single, 0); err != nil {
			b.failed(err, 1)
			continue
		}
		b.sent.Add(1)
	}
}

func (b *batchConn) failedN(err error, segs []int) {
	total := 0
	for _, s := range segs {
		total += s
	}
	b.failed(err, total)
}

func (b *batchConn) failed(err error, n int) {
	b.lastErr.Store(&err)
	// Log the first failure and then one in 1024: a route that vanished
	// can fail every packet to one viewer.
	if total := b.errs.Add(uint64(n)); b.log != nil && (total == uint64(n) || total/1024 != (total-uint64(n))/1024) {
		b.log.Warnf("udp batch send: %d datagrams refused so far, last: %v", total, err)
	}
}

// err returns the last send error, if any.
func (b *batchConn) err() error {
	if e := b.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}
