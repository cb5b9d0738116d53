package media

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// maxAUBytes bounds one access unit (a 4K IDR fits many times over).
const maxAUBytes = 8 << 20

// h264Depack collects one H264 access unit from RTP payloads (RFC 6184:
// single NAL units, STAP-A, FU-A; what the forwarder forwards). The buffers
// are reused; finish copies the unit out once.
type h264Depack struct {
	buf   []byte // NAL units back to back
	ends  []int  // end offset of each complete NAL unit in buf
	fu    bool   // inside an FU-A
	sps   []byte // last parameter sets seen, owned
	pps   []byte
	list  [][]byte // scratch: the unit's output
	units [][]byte // scratch: the unit's NAL units in buf
}

// keepParamSet stores parameter set n in *dst unless it holds it already.
func keepParamSet(dst *[]byte, n []byte) {
	if !bytes.Equal(n, *dst) {
		*dst = bytes.Clone(n)
	}
}

func (d *h264Depack) reset() { d.buf, d.ends, d.fu = d.buf[:0], d.ends[:0], false }

func (d *h264Depack) nalu(n []byte) {
	d.buf = append(d.buf, n...)
	d.ends = append(d.ends, len(d.buf))
}

// add appends one payload's NAL units; false if the payload is malformed or
// does not fit the unit in progress.
func (d *h264Depack) add(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		if d.fu {
			return false
		}
		d.nalu(p)
	case t == naluSTAPA:
		if d.fu {
			return false
		}
		for i := 1; i < len(p); {
			if i+2 > len(p) {
				return false
			}
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if n == 0 || i+n > len(p) {
				return false
			}
			d.nalu(p[i : i+n])
			i += n
		}
	case t == naluFUA:
		if len(p) < 3 {
			return false
		}
		start, end := p[1]&0x80 != 0, p[1]&0x40 != 0
		if start == d.fu {
			return false // a second start, or a middle without a start
		}
		if start {
			d.fu = true
			d.buf = append(d.buf, p[0]&0xe0|p[1]&0x1f)
		}
		d.buf = append(d.buf, p[2:]...)
		if end {
			d.fu = false
			d.ends = append(d.ends, len(d.buf))
		}
	default:
		return false
	}
	return len(d.buf) <= maxAUBytes
}

// finish fills au with the unit's NAL units (AUDs and reserved types left
// out). A unit with an IDR is a keyframe when SPS and PPS are known; those
// seen last are put in front if the unit lacks them, so every keyframe is a
// decoder's starting point. New parameter sets update ka's parameters.
func (d *h264Depack) finish(au *AccessUnit, ka *kindAsm) bool {
	defer d.reset()
	if d.fu || len(d.ends) == 0 {
		return false
	}
	units := d.units[:0]
	for i, start := 0, 0; i < len(d.ends); start, i = d.ends[i], i+1 {
		if n := d.buf[start:d.ends[i]]; len(n) > 0 {
			units = append(units, n)
		}
	}
	d.units = units[:0]
	var haveSPS, havePPS, idr bool
	for _, n := range units {
		switch n[0] & 0x1f {
		case naluSPS:
			haveSPS = true
			keepParamSet(&d.sps, n)
		case naluPPS:
			havePPS = true
			keepParamSet(&d.pps, n)
		case naluIDR:
			idr = true
		}
	}
	key := idr && d.sps != nil && d.pps != nil
	if key {
		p := Params{Codec: "H264", SPS: d.sps, PPS: d.pps}
		var sps h264.SPS
		if sps.Unmarshal(d.sps) == nil {
			p.Width, p.Height = sps.Width(), sps.Height()
		}
		ka.setParams(p)
	}
	// A keyframe without its own SPS and PPS gets the last ones, in order.
	prefix := key && !(haveSPS && havePPS)
	list := d.list[:0]
	if prefix {
		list = append(list, d.sps, d.pps)
	}
	size := 0
	for _, n := range units {
		switch n[0] & 0x1f {
		case naluAUD:
			continue
		case naluSPS, naluPPS:
			if prefix {
				continue
			}
		}
		list = append(list, n)
	}
	for _, n := range list {
		size += len(n)
	}
	d.list = list[:0]
	if len(list) == 0 {
		return false
	}
	data := make([]byte, 0, size)
	nalus := make([][]byte, len(list))
	for i, n := range list {
		data = append(data, n...)
		nalus[i] = data[len(data)-len(n):]
	}
	au.NALUs, au.Key, au.size = nalus, key, size
	return true
}
