package media

import (
	"sync/atomic"
	"time"
)

// videoOut is a viewer's outgoing video numbering, owned by its writer
// goroutine. Each layer forwarder has its own sequence and timestamp
// space; the writer adds per-viewer offsets, set afresh at each layer
// switch (always at a keyframe of the new layer) so that the viewer's
// stream continues: sequence at last+1, timestamp at last + the room-clock
// time between the two packets (each layer's timestamps are mapped onto the
// room clock from its own sender reports, clock.go). VP8 picture ids and
// TL0PICIDX are made continuous the same way (libwebrtc's frame buffer
// drops a keyframe whose picture id goes backwards). A viewer that never
// switches has zero offsets: no copy, its numbering is the forwarder's.
//
// A bandwidth probe (probe.go) inserts padding-only packets between frames;
// they take sequence numbers, so the offset grows by one per padding packet.
// Each offset is a segment of the viewer's numbering (segs), so that a late
// or retransmitted packet keeps the number it was first sent with and a
// NACK finds its layer's packet, or is a padding packet's and is ignored.
type videoOut struct {
	have       bool
	slot       uint8
	seqOff     uint16
	tsOff      uint32
	lastSeq    uint16
	lastTS     uint32
	lastPTS    time.Duration
	lastSrc    uint16 // the newest packet's sequence number on its layer
	lastMarker bool   // the newest packet ends a frame: padding may follow
	codec      uint8  // the newest packet's codec (padding's payload type)
	segMedia   bool   // the newest segment has carried media (else padding extends it)
	bytes      uint64 // video payload bytes numbered so far (a probe pads what they leave)
	segs       outSegs

	vp8     bool
	picOff  uint16 // added to picture ids (15-bit or 7-bit arithmetic)
	tl0Off  uint8
	lastPic uint16
	lastTl0 uint8
	havePic bool
	tseq    uint16            // the viewer's transport-wide sequence counter (both kinds)
	scratch *[maxPayload]byte // for rewritten VP8 payloads; made at the first need
}

// rewrite sets o's numbering (and payload, for a rewritten VP8 picture id)
// for pk; false drops pk: a packet of another layer than the viewer's,
// except the keyframe that switches to it.
func (w *videoOut) rewrite(v *viewer, pk *packet, o *outHdr) bool {
	first := !w.have
	switch {
	case !w.have:
		w.have, w.slot = true, pk.layer
		w.vp8 = v.s.codecs[pk.codec].fam == famVP8
		w.segs.begin(w.slot, pk.seq, 0, 0)
		w.segMedia = true
	case pk.layer == w.slot && int16(pk.seq-w.lastSrc) <= 0:
		// Late or retransmitted: the number it was (or would have been)
		// sent with, whatever padding or resume came since.
		out, ok := w.segs.outFor(pk.layer, pk.seq)
		if !ok {
			return false
		}
		o.seq = out
		o.ts = pk.ts + w.tsOff
		if w.vp8 {
			w.vp8Rewrite(pk, o, false)
		}
		return true
	case pk.layer != w.slot:
		if !pk.keyframe || int32(pk.layer) != v.cur.Load() {
			return false // a late packet of the old layer
		}
		w.reanchor(v, pk)
	case pk.keyframe && int16(pk.seq+w.seqOff-w.lastSeq) > 1:
		// Resuming after a pause or a skip to this keyframe: close the
		// gap, so the viewer neither NACKs nor waits for what was skipped.
		w.reanchor(v, pk)
	}
	o.seq = pk.seq + w.seqOff
	o.ts = pk.ts + w.tsOff
	w.bytes += uint64(pk.n)
	newest := first || int16(o.seq-w.lastSeq) > 0
	if newest {
		w.lastSeq, w.lastTS, w.lastPTS = o.seq, o.ts, pk.pts
		w.lastSrc, w.lastMarker, w.codec = pk.seq, pk.marker, pk.codec
		w.segMedia = true
	}
	if w.vp8 {
		w.vp8Rewrite(pk, o, newest)
	}
	return true
}

// reanchor continues the viewer's numbering at keyframe pk of a new layer
// (or after a gap): sequence at last+1, timestamp at last + the room-clock
// time in between, picture id at last+1.
func (w *videoOut) reanchor(v *viewer, pk *packet) {
	w.seqOff = w.lastSeq + 1 - pk.seq
	rate := v.s.codecs[pk.codec].params.ClockRate
	ticks := uint32(1)
	if d := pk.pts - w.lastPTS; d > 0 {
		ticks = max(1, uint32(int64(d/time.Microsecond)*int64(rate)/1e6))
	}
	w.tsOff = w.lastTS + ticks - pk.ts
	w.slot = pk.layer
	w.vp8 = v.s.codecs[pk.codec].fam == famVP8
	if w.vp8 && w.havePic {
		if pic, tl0, ok := vp8IDs(pk.payload()); ok {
			w.picOff = w.lastPic + 1 - pic.id
			if tl0.ok {
				w.tl0Off = w.lastTl0 + 1 - tl0.v
			}
		}
	}
	w.segs.begin(w.slot, pk.seq, w.seqOff, 0)
	w.segMedia = true
}

// padding numbers n padding-only packets to follow the newest packet: their
// first sequence number and the timestamp they carry (the newest frame's).
// false (nothing numbered) unless the newest packet ended a frame: a
// padding packet inside a frame would split it for the receiver.
func (w *videoOut) padding(n int) (seq uint16, ts uint32, ok bool) {
	if !w.have || !w.lastMarker || n <= 0 {
		return 0, 0, false
	}
	seq = w.lastSeq + 1
	w.lastSeq += uint16(n)
	w.seqOff += uint16(n)
	if w.segMedia {
		// Media after these packets continues at lastSrc+1, numbered after them.
		w.segs.begin(w.slot, w.lastSrc+1, w.seqOff, n)
		w.segMedia = false
	} else {
		w.segs.extend(w.seqOff, n)
	}
	return seq, w.lastTS, true
}

// outSegSlots bounds the segments remembered: at most one per frame while a
// probe pads (about 2 s at 30 frames/s), one per switch or resume otherwise.
const outSegSlots = 64

// outSegs is the history of a viewer's video numbering: segment i maps
// layer sequence numbers from srcFrom on to srcFrom+seqOff, and the pad
// numbers just before its first one were padding. Written by the viewer's
// writer, read by its RTCP reader (NACKs): each slot is one atomic word,
// valid<<63 | slot<<56 | pad<<32 | srcFrom<<16 | seqOff.
type outSegs struct {
	n    atomic.Uint32 // segments begun so far; the newest is n-1
	ring [outSegSlots]atomic.Uint64
}

func packSeg(slot uint8, srcFrom, seqOff uint16, pad int) uint64 {
	return 1<<63 | uint64(slot&0x7f)<<56 | uint64(min(pad, 0xffff))<<32 | uint64(srcFrom)<<16 | uint64(seqOff)
}

func unpackSeg(v uint64) (slot uint8, srcFrom, seqOff uint16, pad int) {
	return uint8(v>>56) & 0x7f, uint16(v >> 16), uint16(v), int(uint16(v >> 32))
}

func (s *outSegs) begin(slot uint8, srcFrom, seqOff uint16, pad int) {
	i := s.n.Load()
	s.ring[i%outSegSlots].Store(packSeg(slot, srcFrom, seqOff, pad))
	s.n.Store(i + 1)
}

// extend adds n padding packets to the newest segment (no media since).
func (s *outSegs) extend(seqOff uint16, n int) {
	i := s.n.Load() - 1
	slot, src, _, pad := unpackSeg(s.ring[i%outSegSlots].Load())
	s.ring[i%outSegSlots].Store(packSeg(slot, src, seqOff, pad+n))
}

// outFor is the outgoing number of the layer's packet src (the writer's).
func (s *outSegs) outFor(slot uint8, src uint16) (uint16, bool) {
	n := s.n.Load()
	for k := uint32(0); k < min(n, outSegSlots); k++ {
		v := s.ring[(n-1-k)%outSegSlots].Load()
		sl, from, off, _ := unpackSeg(v)
		if v != 0 && sl == slot && int16(src-from) >= 0 {
			return src + off, true
		}
	}
	return 0, false
}

// source maps an outgoing number back to its layer and layer sequence
// number; false for a padding packet's number (padding true) or one older
// than the history. Safe from any goroutine (the RTCP reader's NACKs); a
// segment overwritten while it is read can only make it miss.
func (s *outSegs) source(out uint16) (slot uint8, src uint16, ok, padding bool) {
	n := s.n.Load()
	var nextOut uint16
	nextPad, haveNext := 0, false
	for k := uint32(0); k < min(n, outSegSlots-1); k++ {
		v := s.ring[(n-1-k)%outSegSlots].Load()
		if v == 0 {
			return 0, 0, false, false
		}
		sl, from, off, pad := unpackSeg(v)
		start := from + off
		if int16(out-start) >= 0 {
			if haveNext && int16(out-(nextOut-uint16(nextPad))) >= 0 {
				return 0, 0, false, true // a padding packet's
			}
			return sl, out - off, true, false
		}
		if pad > 0 && int16(out-(start-uint16(pad))) >= 0 {
			return 0, 0, false, true // padding, its segment the newest or the media before it gone
		}
		nextOut, nextPad, haveNext = start, pad, true
	}
	return 0, 0, false, false
}

// vp8Rewrite applies the picture id offsets to o's payload (a copy) and
// remembers the newest outgoing ids.
func (w *videoOut) vp8Rewrite(pk *packet, o *outHdr, newest bool) {
	p := pk.payload()
	pic, tl0, ok := vp8IDs(p)
	if !ok {
		return
	}
	id := (pic.id + w.picOff) & pic.mask
	t := tl0.v + w.tl0Off
	if w.picOff&pic.mask != 0 || (tl0.ok && w.tl0Off != 0) {
		if w.scratch == nil {
			w.scratch = new([maxPayload]byte)
		}
		n := copy(w.scratch[:], p)
		b := w.scratch[:n]
		if pic.mask == 0x7fff {
			b[pic.at] = 0x80 | byte(id>>8)
			b[pic.at+1] = byte(id)
		} else {
			b[pic.at] = byte(id)
		}
		if tl0.ok {
			b[tl0.at] = t
		}
		o.payload = b
	}
	if newest || !w.havePic {
		w.havePic, w.lastPic = true, id
		if tl0.ok {
			w.lastTl0 = t
		}
	}
}

type vp8Pic struct {
	id, mask uint16
	at       int
}

type vp8Tl0 struct {
	v  uint8
	at int
	ok bool
}

// vp8IDs finds the picture id and TL0PICIDX of a VP8 payload descriptor
// (RFC 7741 4.2); ok is false without a picture id.
func vp8IDs(p []byte) (pic vp8Pic, tl0 vp8Tl0, ok bool) {
	if len(p) < 3 || p[0]&0x80 == 0 {
		return pic, tl0, false
	}
	x := p[1]
	if x&0x80 == 0 {
		return pic, tl0, false
	}
	i := 2
	if p[i]&0x80 != 0 {
		if len(p) < i+2 {
			return pic, tl0, false
		}
		pic = vp8Pic{id: uint16(p[i]&0x7f)<<8 | uint16(p[i+1]), mask: 0x7fff, at: i}
		i += 2
	} else {
		pic = vp8Pic{id: uint16(p[i]), mask: 0x7f, at: i}
		i++
	}
	if x&0x40 != 0 && i < len(p) {
		tl0 = vp8Tl0{v: p[i], at: i, ok: true}
	}
	return pic, tl0, true
}
