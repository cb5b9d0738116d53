package media

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// H264 from RTSP is depacketized into access units (gortsplib's rtph264
// decoder) and packetized again here, once per room, for WebRTC: payloads of
// at most rtspMaxPayload bytes (single NAL units, STAP-A, FU-A), SPS and PPS
// in front of every IDR so a viewer joining at any keyframe decodes at once.
//
// It also decides whether the stream has B-frames, which browsers' WebRTC
// stacks cannot play (they decode in arrival order and never reorder):
//   - from the SPS: baseline profile or pic_order_cnt_type 2 cannot reorder;
//     a VUI bitstream_restriction with max_num_reorder_frames > 0 does
//     (x264 always writes it);
//   - from every slice header: slice_type B.
// The SPS answer comes first (at ANNOUNCE when the SDP carries it); the slice
// check is the one that cannot be fooled by a missing or silent VUI.
//
// Everything here runs on untrusted input: no panics, bounded work.

// rtspMaxPayload is the largest RTP payload sent to viewers: 1200 bytes
// leaves room for RTP, SRTP and TURN headers inside any real-world MTU.
const rtspMaxPayload = 1200

const naluAUD = 9

// h264Packer re-packetizes one H264 track. Not safe for concurrent use.
type h264Packer struct {
	sps, pps []byte // last parameter sets seen (SDP or in-band)
	bframes  bool   // B-frames detected: the track must not be forwarded
	buf      [rtspMaxPayload]byte
	list     [][]byte
}

// setParams records parameter sets from the SDP (sprop-parameter-sets).
func (h *h264Packer) setParams(sps, pps []byte) {
	if len(sps) > 0 && sps[0]&0x1f == naluSPS {
		h.noteSPS(sps)
	}
	if len(pps) > 0 && pps[0]&0x1f == naluPPS {
		keepParamSet(&h.pps, pps)
	}
}

func (h *h264Packer) noteSPS(sps []byte) {
	if !bytes.Equal(sps, h.sps) {
		h.sps = bytes.Clone(sps)
		if reorder, known := spsReorders(sps); known && reorder {
			h.bframes = true
		}
	}
}

// spsReorders reports whether an SPS allows frames out of output order
// (B-frames), and whether the SPS says so at all.
func spsReorders(nalu []byte) (reorder, known bool) {
	var sps h264.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return false, false
	}
	switch {
	case sps.ProfileIdc == 66: // baseline: no B slices
		return false, true
	case sps.PicOrderCntType == 2: // output order = decoding order
		return false, true
	case sps.VUI != nil && sps.VUI.BitstreamRestriction != nil:
		return sps.VUI.BitstreamRestriction.MaxNumReorderFrames > 0, true
	}
	return false, false
}

// sliceIsB reads slice_type from a coded slice NAL unit (types 1 and 5).
func sliceIsB(nalu []byte) bool {
	// first_mb_in_slice and slice_type are two Exp-Golomb numbers within the
	// first few bytes; strip emulation prevention from a bounded prefix.
	var hdr [16]byte
	n, zeros := 0, 0
	for _, b := range nalu[1:] {
		if n == len(hdr) {
			break
		}
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
		hdr[n] = b
		n++
	}
	r := bitReader{buf: hdr[:n]}
	if _, ok := r.golomb(); !ok {
		return false
	}
	st, ok := r.golomb()
	return ok && st%5 == 1
}

type bitReader struct {
	buf []byte
	pos int
}

func (r *bitReader) bit() (uint32, bool) {
	if r.pos >= len(r.buf)*8 {
		return 0, false
	}
	b := uint32(r.buf[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return b, true
}

// golomb reads ue(v); false on truncation or a value beyond 32 bits.
func (r *bitReader) golomb() (uint32, bool) {
	lead := 0
	for {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		if b == 1 {
			break
		}
		lead++
		if lead > 31 {
			return 0, false
		}
	}
	v := uint32(0)
	for range lead {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return (1<<lead - 1) + v, true
}

// pack turns one access unit into RTP payloads, calling emit for each (the
// payload is only valid during the call; marker is set on the last). It
// updates the cached parameter sets and the B-frame verdict; after a
// B-frame verdict it emits nothing. It reports whether the unit is an IDR.
func (h *h264Packer) pack(au [][]byte, emit func(payload []byte, marker bool)) (idr bool) {
	var haveSPS, havePPS bool
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case naluSPS:
			haveSPS = true
			h.noteSPS(n)
		case naluPPS:
			havePPS = true
			keepParamSet(&h.pps, n)
		case naluIDR:
			idr = true
			if sliceIsB(n) {
				h.bframes = true
			}
		case 1:
			if sliceIsB(n) {
				h.bframes = true
			}
		}
	}
	if h.bframes {
		return idr
	}
	list := h.list[:0]
	if idr && (!haveSPS || !havePPS) && h.sps != nil && h.pps != nil {
		list = append(list, h.sps, h.pps)
	}
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if t := n[0] & 0x1f; t == naluAUD || t == 0 || t > 23 {
			continue // delimiters and reserved/aggregation types carry nothing a viewer needs
		}
		list = append(list, n)
	}
	h.list = list[:0]
	h.emitNALUs(list, emit)
	return idr
}

// emitNALUs aggregates consecutive small NAL units into STAP-A, sends the
// ones that fit alone as single NAL unit packets and fragments the rest as
// FU-A.
func (h *h264Packer) emitNALUs(list [][]byte, emit func([]byte, bool)) {
	for i := 0; i < len(list); {
		n := list[i]
		// How many of the following units fit into one STAP-A with n?
		size, j := 1+2+len(n), i+1
		for j < len(list) && size+2+len(list[j]) <= rtspMaxPayload {
			size += 2 + len(list[j])
			j++
		}
		last := j == len(list)
		switch {
		case j-i > 1:
			b := h.buf[:0]
			nri := byte(0)
			for _, m := range list[i:j] {
				nri = max(nri, m[0]&0x60)
			}
			b = append(b, nri|naluSTAPA)
			for _, m := range list[i:j] {
				b = append(b, byte(len(m)>>8), byte(len(m)))
				b = append(b, m...)
			}
			emit(b, last)
			i = j
		case len(n) <= rtspMaxPayload:
			emit(n, i == len(list)-1)
			i++
		default:
			h.fragment(n, i == len(list)-1, emit)
			i++
		}
	}
}

func (h *h264Packer) fragment(n []byte, lastNALU bool, emit func([]byte, bool)) {
	ind := n[0]&0xe0 | naluFUA
	typ := n[0] & 0x1f
	body := n[1:]
	const chunk = rtspMaxPayload - 2
	for off := 0; off < len(body); off += chunk {
		end := min(off+chunk, len(body))
		fu := typ
		if off == 0 {
			fu |= 0x80
		}
		if end == len(body) {
			fu |= 0x40
		}
		b := append(h.buf[:0], ind, fu)
		b = append(b, body[off:end]...)
		emit(b, lastNALU && end == len(body))
	}
}
