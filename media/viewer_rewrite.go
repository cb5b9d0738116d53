package media

import "time"

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
type videoOut struct {
	have    bool
	slot    uint8
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
	lastPTS time.Duration

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
		v.nackMap.Store(1<<63 | uint64(w.slot)<<16)
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
	newest := first || int16(o.seq-w.lastSeq) > 0
	if newest {
		w.lastSeq, w.lastTS, w.lastPTS = o.seq, o.ts, pk.pts
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
	v.nackMap.Store(1<<63 | uint64(w.slot)<<16 | uint64(w.seqOff))
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
