package media

import (
	"sync"
	"time"
)

// Fast first picture (issue 16): a forwarder keeps the packets of the
// current GOP (its last video keyframe and everything since), so that a
// viewer who connects starts from that keyframe at once instead of waiting
// for one: a source that cannot be asked (RTSP, RTMP, SRT) makes one only
// every GOP, and one that can (WHIP) still takes a round trip and an encode.
// The reader path has its own, access-unit GOP cache (stream_gop.go); this
// one is packets, because WebRTC viewers stay on the shared packets.
const (
	// fastStartMaxBytes bounds one forwarder's packet GOP: a 2 s GOP at
	// 4 Mbit/s. A GOP that outgrows it is dropped until the next keyframe,
	// and viewers who join meanwhile wait for a keyframe as before.
	fastStartMaxBytes = 1 << 20
	// fastStartMaxPackets bounds it in packets too (tiny packets would
	// otherwise let a GOP span more sequence numbers than a viewer's
	// rewrite window): ~870 packets of 1200 bytes fill fastStartMaxBytes.
	fastStartMaxPackets = 4096
	// fastStartMaxAge: a GOP whose last packet is older than this belongs to
	// a source that went away; nobody starts from it.
	fastStartMaxAge = time.Second
)

// packetGOP is one forwarder's cached GOP. add runs on the forwarder's write
// path with f.mu held; snapshot runs with f.mu held too, which is what
// orders a viewer's backlog before the live packets it gets next.
type packetGOP struct {
	mu     sync.Mutex
	pkts   []*packet // from a keyframe's first packet; each holds a reference
	bytes  int
	lastAt time.Time
	keyAt  time.Time // when the cached keyframe was forwarded
}

// add records pk (video only): a keyframe start begins a new GOP, anything
// else extends the current one if there is one.
func (g *packetGOP) add(pk *packet, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// An H264 keyframe "starts" at its SPS and again at its IDR (same
	// timestamp): only the first starts a GOP.
	if pk.keyframe && (len(g.pkts) == 0 || g.pkts[0].ts != pk.ts) {
		g.resetLocked()
		g.keyAt = now
	} else if len(g.pkts) == 0 {
		return
	}
	if g.bytes+pk.n > fastStartMaxBytes || len(g.pkts) >= fastStartMaxPackets {
		g.resetLocked()
		return
	}
	pk.retain()
	g.pkts = append(g.pkts, pk)
	g.bytes += pk.n
	g.lastAt = now
}

func (g *packetGOP) resetLocked() {
	for i, pk := range g.pkts {
		pk.release()
		g.pkts[i] = nil
	}
	g.pkts, g.bytes = g.pkts[:0], 0
}

// get returns the cached packet numbered seq, retained for the caller, or
// nil. The GOP's packets are in forwarding order: seq's offset from the
// first is where it is, or a few places before it when packets were lost
// or reordered upstream (a look at gopSeek places on either side; the lock
// is the publisher's write path's too).
func (g *packetGOP) get(seq uint16) *packet {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.pkts)
	if n == 0 {
		return nil
	}
	at := int(seq - g.pkts[0].seq)
	if at >= n+gopSeek {
		return nil // before the GOP (a wrapped difference), or after it
	}
	for i := max(at-gopSeek, 0); i <= min(at+gopSeek, n-1); i++ {
		if g.pkts[i].seq == seq {
			g.pkts[i].retain()
			return g.pkts[i]
		}
	}
	return nil
}

// gopSeek is how far from its place get looks for a packet.
const gopSeek = 16

// snapshot returns the cached GOP, each packet retained for the caller, if
// it is fresh and every packet is of a codec the viewer's track can send;
// nil otherwise. age is how old its keyframe is.
func (g *packetGOP) snapshot(now time.Time, canSend func(*packet) bool) (pkts []*packet, bytes int, age time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pkts) == 0 || now.Sub(g.lastAt) > fastStartMaxAge {
		return nil, 0, 0
	}
	for _, pk := range g.pkts {
		if !canSend(pk) {
			return nil, 0, 0
		}
	}
	pkts = make([]*packet, len(g.pkts))
	for i, pk := range g.pkts {
		pk.retain()
		pkts[i] = pk
	}
	return pkts, g.bytes, now.Sub(g.keyAt)
}
