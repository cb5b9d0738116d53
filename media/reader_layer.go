package media

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Readers (the recorder, LL-HLS, RTSP readers: stream.go) follow one video
// layer of a simulcast room: the highest one being sent. The top layer,
// normally; when the publisher stops sending it (a browser drops its top
// layer under CPU or uplink pressure) the readers move down to the next
// one at its first keyframe, instead of freezing with the layer that
// stopped, and back up when the top layer has been sent again for
// readerUpHold. To readers a move is a keyframe whose Params changed (the
// resolution), on the same room clock: the recorder starts a new init
// segment, and its timeline keeps the gap the move took, since audio went
// on meanwhile. Nothing else is told: it is the same source.
//
// The decision is the stream goroutine's (deliver): only it switches, and it
// drops the video packets of any other layer, so a switch is exact whatever
// the forwarders race. The forwarders only pre-filter (follow.offers): they
// hand the tap the followed layer's packets, the wanted layer's, and any
// layer's keyframes (rare, and what a switch starts from).

const (
	// readerCheck is how often the stream looks at which layers are sent.
	readerCheck = 100 * time.Millisecond
	// readerStall: a layer without a packet for this long is not being
	// sent (a 30 fps layer sends every 33 ms). When the publisher's encoder
	// stalls, every layer stalls and there is none to move to.
	readerStall = 500 * time.Millisecond
	// readerUpHold is how long a higher layer must be sent before readers
	// move up to it: a browser that toggles its top layer under load does
	// not give the recording a new resolution every few seconds.
	readerUpHold = 3 * time.Second
)

// readerFollow is the layer the room's readers follow, shared between the
// stream goroutine (which writes it) and the forwarders (which read it).
type readerFollow struct {
	layer atomic.Int32 // slot whose video the readers get
	want  atomic.Int32 // slot to move to at its next keyframe; -1 = none
}

func (fl *readerFollow) init() { fl.want.Store(-1) }

// reset: a new source (or none) starts at its top layer. Called under the
// room's mu when the source changes; the stream goroutine's own state
// catches up at its next look.
func (fl *readerFollow) reset() {
	fl.layer.Store(0)
	fl.want.Store(-1)
}

// offers tells a video forwarder of slot layer whether the taps want pk.
func (fl *readerFollow) offers(layer uint8, key bool) bool {
	l := int32(layer)
	return key || l == fl.layer.Load() || l == fl.want.Load()
}

// followState is the stream goroutine's own part of following, for the
// current source (newSource clears it).
type followState struct {
	upSlot  int // a higher layer seen sent, since upSince; -1 none
	upSince time.Time
	// began is when the stream first saw this source's video: a packet, or
	// a look at the layers finding one sent. Its layers start within a few
	// packets of each other, in any order: for readerStall the followed
	// layer is not yet "not being sent".
	began time.Time
	buf   [maxLayers]layerInfo
}

// newSource forgets what the previous source's layers did.
func (fs *followState) newSource() {
	fs.upSlot, fs.upSince, fs.began = -1, time.Time{}, time.Time{}
}

// follow decides, for one video packet on the stream goroutine, whether it
// belongs to the followed layer, moving the readers to the wanted layer at
// its keyframe. Another layer's keyframe is a reason to look at once: the
// first packet of a host's new source is one.
func (st *stream) follow(pk *packet, now time.Time) bool {
	fl := &st.r.follow
	if st.fs.began.IsZero() {
		st.fs.began = now
	}
	cur := fl.layer.Load()
	if int32(pk.layer) == cur {
		return true
	}
	if !pk.keyframe {
		return false
	}
	if fl.want.Load() != int32(pk.layer) {
		st.chooseLayer(now)
		if fl.want.Load() != int32(pk.layer) {
			return false
		}
	}
	fl.layer.Store(int32(pk.layer))
	fl.want.Store(-1)
	st.fs.upSlot = -1
	st.r.sfu.metrics.readerLayerSwitch()
	st.r.sfu.log.Info("readers follow another video layer", "room", st.r.id, "from", layerName(st.r, int(cur)), "to", layerName(st.r, int(pk.layer)))
	st.asm.newVideoLayer()
	return true
}

// lookAtLayers is the stream's tick (every readerCheck, packets or not).
func (st *stream) lookAtLayers(now time.Time) { st.chooseLayer(now) }

// chooseLayer sets the layer to move to: the highest one being sent (a
// packet within readerStall), at once when the followed layer is not being
// sent (but not in the source's first readerStall), after readerUpHold when
// it is a move up to a layer whose bitrate is measured; and asks that layer
// for a keyframe (throttled) until it comes.
//
// A layer not measured yet (rateWindow) has only just started, for the
// first time on this forwarder (a browser adds its top layer as its
// bandwidth estimate grows): it is taken at its first keyframe. The hold is
// for the rest: a top layer that stopped and came back, or two layers sent
// at similar bitrates, whose order by bitrate can cross back and forth.
func (st *stream) chooseLayer(now time.Time) {
	fl := &st.r.follow
	sending := func(slot int) bool {
		f := st.r.layers[slot]
		last := f.rate.last.Load()
		return f.cur.Load() != nil && last != 0 && now.Sub(time.Unix(0, last)) <= readerStall
	}
	cur := int(fl.layer.Load())
	top, measured := -1, false
	for _, l := range st.r.activeLayers(now, st.fs.buf[:0]) { // highest bitrate first
		if sending(l.slot) {
			top, measured = l.slot, l.bps > 0
			break
		}
	}
	if top >= 0 && st.fs.began.IsZero() {
		// Before any packet reached the stream (the tap drops the other
		// layers' inter frames while it waits for the followed layer's
		// keyframe, which a silent layer never sends).
		st.fs.began = now
	}
	switch {
	case top < 0: // nothing sent (the publisher stalled, or left): stay
		fl.want.Store(-1)
		return
	case top == cur:
		fl.want.Store(-1)
		st.fs.upSlot = -1
		return
	case sending(cur):
		// The followed layer is still sent: a move up, at once to a layer
		// that has just started, else once it has stayed the highest for
		// readerUpHold.
		if !measured {
			break
		}
		if st.fs.upSlot != top {
			st.fs.upSlot, st.fs.upSince = top, now
			return
		}
		if now.Sub(st.fs.upSince) < readerUpHold {
			return
		}
	default:
		// The followed layer is not being sent: move down, unless the
		// source has only just begun and the followed layer is merely late.
		if now.Sub(st.fs.began) < readerStall {
			return
		}
	}
	fl.want.Store(int32(top))
	st.r.layers[top].requestKeyframe()
}

// readerLayer is the forwarder of the layer readers follow: where their
// keyframe requests go.
func (r *room) readerLayer() *forwarder {
	if l := r.follow.layer.Load(); l >= 0 && int(l) < maxLayers {
		return r.layers[l]
	}
	return r.video
}

func layerName(r *room, slot int) string {
	if p := r.layers[slot].rate.rid.Load(); p != nil && *p != "" {
		return *p
	}
	if slot == 0 {
		return "default"
	}
	return "slot " + strconv.Itoa(slot)
}
