package media

import (
	"bytes"

	"github.com/pion/rtp/codecs"
)

// vp8Depack collects one VP8 frame from its RTP payloads (RFC 7741).
type vp8Depack struct {
	pkt   codecs.VP8Packet
	frame []byte
	open  bool
}

func (d *vp8Depack) reset() { d.frame, d.open = d.frame[:0], false }

// add appends one payload; false if it cannot belong to the frame.
func (d *vp8Depack) add(p []byte) bool {
	body, err := d.pkt.Unmarshal(p)
	if err != nil {
		return false
	}
	start := d.pkt.S == 1 && d.pkt.PID == 0
	if start == d.open {
		return false // a second start, or a continuation without one
	}
	d.open = true
	d.frame = append(d.frame, body...)
	return len(d.frame) <= maxAUBytes
}

// finish fills au with the frame; a keyframe's header gives the size.
func (d *vp8Depack) finish(au *AccessUnit, ka *kindAsm) bool {
	defer d.reset()
	f := d.frame
	if !d.open || len(f) < 3 {
		return false
	}
	au.Frame = bytes.Clone(f)
	au.size = len(f)
	if f[0]&0x01 == 0 && len(f) >= 10 && f[3] == 0x9d && f[4] == 0x01 && f[5] == 0x2a {
		au.Key = true
		ka.setParams(Params{Codec: "VP8", Width: int(f[6]) | int(f[7]&0x3f)<<8, Height: int(f[8]) | int(f[9]&0x3f)<<8})
	}
	return true
}
