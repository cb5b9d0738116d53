package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxPayload bounds an RTP payload the SFU forwards. Publishers use an MTU
// around 1200–1460 bytes; anything bigger is dropped rather than split.
const maxPayload = 1500

type kind uint8

const (
	kindVideo kind = iota
	kindAudio
	numKinds
)

func (k kind) String() string {
	if k == kindVideo {
		return "video"
	}
	return "audio"
}

// packet is one rewritten RTP packet shared by every viewer of a room: the
// forwarder copies the payload in once, viewers' queues and the NACK history
// hold references, and the last release returns it to the pool. That is what
// keeps fan-out free of per-viewer allocation and copying.
type packet struct {
	refs atomic.Int32
	pool *sync.Pool

	kind     kind
	layer    uint8 // video: the layer slot it came from (simulcast.go)
	codec    uint8 // index into codecTable
	keyframe bool  // first packet of a keyframe
	marker   bool
	seq      uint16        // rewritten, room-wide
	ts       uint32        // rewritten, room-wide
	pts      time.Duration // on the room clock (clock.go)
	n        int
	buf      [maxPayload]byte
}

func newPacketPool() *sync.Pool {
	p := &sync.Pool{}
	p.New = func() any { return &packet{pool: p} }
	return p
}

// getPacket returns a packet holding one reference (the caller's).
func getPacket(pool *sync.Pool) *packet {
	pk := pool.Get().(*packet)
	pk.refs.Store(1)
	return pk
}

func (p *packet) payload() []byte { return p.buf[:p.n] }

func (p *packet) retain() { p.refs.Add(1) }

func (p *packet) release() {
	switch n := p.refs.Add(-1); {
	case n == 0:
		p.pool.Put(p)
	case n < 0:
		// A bug in reference counting would hand one buffer to two writers;
		// fail loudly rather than send corrupted media.
		panic("media: packet released more often than retained")
	}
}

// history keeps the last packets of one forwarder, indexed by rewritten
// sequence number, to answer viewers' NACKs once per room instead of pion's
// per-viewer responder copying every packet per viewer.
type history struct {
	mu    sync.Mutex
	mask  uint16
	slots []*packet
}

func newHistory(size int) *history {
	n := 1
	for n < size && n < 1<<15 {
		n <<= 1
	}
	return &history{mask: uint16(n - 1), slots: make([]*packet, n)}
}

// put stores pk, taking over one reference the caller gave it.
func (h *history) put(pk *packet) {
	h.mu.Lock()
	i := pk.seq & h.mask
	old := h.slots[i]
	h.slots[i] = pk
	h.mu.Unlock()
	if old != nil {
		old.release()
	}
}

// evicted reports whether the slot of seq holds a newer packet: seq is
// older than the history reaches (whether or not it ever arrived), as
// opposed to a number not forwarded yet (lost upstream, and perhaps still
// being repaired by the SFU's own NACKs) or never.
func (h *history) evicted(seq uint16) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	pk := h.slots[seq&h.mask]
	return pk != nil && int16(pk.seq-seq) > 0
}

// get returns the packet with sequence number seq, retained, or nil.
func (h *history) get(seq uint16) *packet {
	h.mu.Lock()
	defer h.mu.Unlock()
	pk := h.slots[seq&h.mask]
	if pk == nil || pk.seq != seq {
		return nil
	}
	pk.retain()
	return pk
}

// clear drops every reference (room closed).
func (h *history) clear() {
	h.mu.Lock()
	slots := h.slots
	h.slots = make([]*packet, len(slots))
	h.mu.Unlock()
	for _, pk := range slots {
		if pk != nil {
			pk.release()
		}
	}
}
