package media

import (
	"bytes"
	"time"
)

// assembler turns a room's outgoing packets (after the forwarder's rewrite:
// one continuous numbering and one room-clock PTS per kind) into access
// units. It runs on the stream's goroutine only, once per room. Input is
// untrusted publisher payload: no panics, bounded work, a broken unit is
// dropped (and video then waits for a keyframe).
type assembler struct {
	table codecTable
	k     [numKinds]kindAsm
}

// kindAsm is the assembler's state for one kind.
type kindAsm struct {
	video   bool
	haveSeq bool
	lastSeq uint16
	codec   int  // codec of the unit in progress; -1 = none yet
	needKey bool // video: drop until a keyframe
	askKey  bool // video: a loss started a wait for a keyframe; someone must ask for one
	havePTS bool
	lastPTS time.Duration
	// the video unit in progress
	open   bool
	ts     uint32
	pts    time.Duration
	h264   h264Depack
	vp8    vp8Depack
	params *Params // current video parameters
	keyPar *Params // those of the last keyframe delivered
}

func (a *assembler) init(t codecTable) {
	a.table = t
	for k := range a.k {
		a.k[k] = kindAsm{video: kind(k) == kindVideo, codec: -1, needKey: kind(k) == kindVideo}
	}
}

// reset: the source went away. What continues across sources is the PTS
// floor and the parameters (an identical SPS after a reconnect is no change).
func (a *assembler) reset() {
	for k := range a.k {
		ka := &a.k[k]
		ka.discard()
		ka.haveSeq = false
		ka.needKey = ka.video
	}
}

// newVideoLayer: the video that follows is another simulcast layer's (its
// own numbering), from its keyframe; the parameters carry over, so the
// keyframe's new SPS is told as ParamsChanged.
func (a *assembler) newVideoLayer() {
	ka := &a.k[kindVideo]
	ka.discard()
	ka.haveSeq = false
	ka.needKey = true
}

// lost: video frames from here on reference what is gone, so they wait
// for a keyframe, which must be asked for: a source's own next one may be a
// GOP (seconds) away. Already waiting, a new request is due only when what
// broke was the awaited keyframe itself (broke: a unit was open); otherwise
// the request made when the wait began stands.
func (ka *kindAsm) lost(broke bool) {
	if ka.video && (!ka.needKey || broke) {
		ka.askKey = true
	}
	ka.needKey = ka.video
}

// wantsKey reports that a loss left the video waiting for a keyframe
// nobody has asked for yet; asked clears it once a request went out. Until
// then the stream tries at every packet: the throttle refuses a request
// within minKeyframeGap of the last one, which is exactly when a keyframe
// that was asked for arrives broken, or behind in PTS.
func (a *assembler) wantsKey() bool {
	ka := &a.k[kindVideo]
	return ka.askKey && ka.needKey
}

// asked: the keyframe wantsKey wanted has been asked for.
func (a *assembler) asked() { a.k[kindVideo].askKey = false }

func (ka *kindAsm) discard() {
	ka.open = false
	ka.h264.reset()
	ka.vp8.reset()
}

// push takes one packet (valid during the call) and returns a finished
// access unit, or nil.
func (a *assembler) push(pk *packet) *AccessUnit {
	ka := &a.k[pk.kind]
	if ka.haveSeq && pk.seq != ka.lastSeq+1 {
		// Lost upstream or in the tap: the unit in progress is broken, and
		// so are the video frames that reference it.
		broke := ka.open
		ka.discard()
		ka.lost(broke)
	}
	ka.haveSeq, ka.lastSeq = true, pk.seq
	if int(pk.codec) != ka.codec {
		ka.discard()
		ka.codec = int(pk.codec)
		ka.needKey = ka.video
	}
	fam := a.table[ka.codec].fam
	if !ka.video {
		au := &AccessUnit{Codec: famName(fam), PTS: pk.pts, Frame: bytes.Clone(pk.payload()), codec: pk.codec, size: pk.n}
		return ka.finish(au)
	}
	if ka.open && pk.ts != ka.ts {
		ka.discard() // the previous unit never got its marker
	}
	if !ka.open {
		if ka.needKey && !pk.keyframe {
			return nil
		}
		ka.open, ka.ts, ka.pts = true, pk.ts, pk.pts
	}
	var ok bool
	switch fam {
	case famH264:
		ok = ka.h264.add(pk.payload())
	case famVP8:
		ok = ka.vp8.add(pk.payload())
	}
	if !ok {
		ka.discard()
		ka.lost(true)
		return nil
	}
	if !pk.marker {
		return nil
	}
	ka.open = false
	au := &AccessUnit{Video: true, Codec: famName(fam), PTS: ka.pts, codec: pk.codec}
	switch fam {
	case famH264:
		ok = ka.h264.finish(au, ka)
	case famVP8:
		ok = ka.vp8.finish(au, ka)
	}
	if !ok || (ka.needKey && !au.Key) {
		return nil
	}
	ka.needKey, ka.askKey = false, false
	return ka.finish(au)
}

// finish applies the per-kind rules every unit obeys: PTS never goes back
// (a clock correction at a source's first sender report can move a kind
// back once; the units before the correction's point are dropped), and
// keyframes carry the parameters.
//
// Video dropped for going back waits for a keyframe, and asks for one: the
// units that are behind are a few frames (a correction, or a layer the
// readers move to whose clock, anchored on arrival before its first sender
// report, runs a little behind the one they leave), while the source's own
// next keyframe can be a GOP away.
func (ka *kindAsm) finish(au *AccessUnit) *AccessUnit {
	if ka.havePTS && au.PTS < ka.lastPTS {
		if ka.video {
			ka.needKey, ka.askKey = true, true
		}
		return nil
	}
	ka.havePTS, ka.lastPTS = true, au.PTS
	if au.Key {
		au.Params = ka.params
		au.ParamsChanged = ka.params != ka.keyPar
		ka.keyPar = ka.params
	}
	return au
}

// setParams makes p current if it differs from what is.
func (ka *kindAsm) setParams(p Params) {
	if c := ka.params; c != nil && c.Codec == p.Codec && c.Width == p.Width && c.Height == p.Height &&
		bytes.Equal(c.SPS, p.SPS) && bytes.Equal(c.PPS, p.PPS) {
		return
	}
	ka.params = &p
}

func famName(f family) string {
	switch f {
	case famH264:
		return "H264"
	case famVP8:
		return "VP8"
	case famOpus:
		return "Opus"
	case famPCMU:
		return "PCMU"
	case famPCMA:
		return "PCMA"
	}
	return ""
}
