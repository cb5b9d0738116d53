package media

// Keyframe detection on RTP payloads. It runs once per packet per room (not
// per viewer) and on untrusted input, so it must be cheap, allocation-free
// and never index out of range.

// isKeyframeStart reports whether payload is the first packet of a keyframe
// a decoder can start from.
func isKeyframeStart(f family, payload []byte) bool {
	switch f {
	case famH264:
		return h264KeyframeStart(payload)
	case famVP8:
		return vp8KeyframeStart(payload)
	}
	return false
}

const (
	naluIDR   = 5
	naluSPS   = 7
	naluPPS   = 8
	naluSTAPA = 24
	naluFUA   = 28
	naluFUB   = 29
)

// h264KeyframeStart: an SPS or the start of an IDR slice, as a single NAL
// unit, inside a STAP-A, or as the first fragment (S bit) of an FU-A/FU-B.
// SPS counts because encoders send SPS, PPS, IDR in that order and a viewer
// must start at the SPS to decode the IDR.
func h264KeyframeStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case naluIDR, naluSPS:
		return true
	case naluSTAPA:
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if nt := p[i] & 0x1f; nt == naluIDR || nt == naluSPS {
				return true
			}
			i += size
		}
		return false
	case naluFUA, naluFUB:
		if len(p) < 2 {
			return false
		}
		start := p[1]&0x80 != 0
		nt := p[1] & 0x1f
		return start && (nt == naluIDR || nt == naluSPS)
	}
	return false
}

// vp8KeyframeStart: start of partition 0 (S=1, PID=0) whose VP8 payload
// header has the P (inverse keyframe) bit clear (RFC 7741 4.2, 4.3).
func vp8KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	d := p[0]
	if d&0x10 == 0 || d&0x07 != 0 { // S bit, partition index
		return false
	}
	i := 1
	if d&0x80 != 0 { // X: extension byte follows
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if i >= len(p) {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if i >= len(p) {
		return false
	}
	return p[i]&0x01 == 0
}
