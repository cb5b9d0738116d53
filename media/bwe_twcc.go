package media

import "encoding/binary"

// TWCC feedback read straight from the RTCP bytes: every viewer sends ten
// a second, each reporting tens of packets, and rtcp.Unmarshal allocates
// one RecvDelta per reported packet (pion's receiver-report interceptor
// has already parsed it once and cannot share its result).

const (
	rtcpTransportFB = 205 // RTPFB
	fmtTWCC         = 15
	twccHeaderLen   = 20 // RTCP header, sender SSRC, media SSRC, base seq, count, reference time, fb count
)

// isTWCC reports whether pkt (one RTCP packet) is transport-wide feedback.
func isTWCC(pkt []byte) bool {
	return len(pkt) >= twccHeaderLen && pkt[0]>>6 == 2 && pkt[0]&0x1f == fmtTWCC && pkt[1] == rtcpTransportFB
}

// eachTWCCRaw calls fn for every packet status in pkt (one TWCC feedback
// packet), in sequence order, like eachTWCC; false if pkt is malformed
// (fn may have been called for a prefix).
func eachTWCCRaw(pkt []byte, fn func(seq uint16, received bool, arrUs int64)) bool {
	if !isTWCC(pkt) {
		return false
	}
	base := binary.BigEndian.Uint16(pkt[12:])
	count := int(binary.BigEndian.Uint16(pkt[14:]))
	ref := int64(pkt[16])<<16 | int64(pkt[17])<<8 | int64(pkt[18]) // as pion reads it: unsigned
	// First pass: where the chunks end and the deltas begin.
	off, seen := twccHeaderLen, 0
	for seen < count {
		if off+2 > len(pkt) {
			return false
		}
		seen += chunkLen(binary.BigEndian.Uint16(pkt[off:]))
		off += 2
	}
	deltas := off
	arr := ref * 64000
	seq := base
	left := count
	emit := func(sym uint16) bool {
		if left <= 0 {
			return true
		}
		left--
		switch sym {
		case 1: // small delta, 1 byte × 250 µs
			if deltas+1 > len(pkt) {
				return false
			}
			arr += int64(pkt[deltas]) * 250
			deltas++
			fn(seq, true, arr)
		case 2: // large delta, signed 2 bytes × 250 µs
			if deltas+2 > len(pkt) {
				return false
			}
			arr += int64(int16(binary.BigEndian.Uint16(pkt[deltas:]))) * 250
			deltas += 2
			fn(seq, true, arr)
		default: // not received (or received without a delta: no time to use)
			fn(seq, false, 0)
		}
		seq++
		return true
	}
	for c := twccHeaderLen; c < off; c += 2 {
		chunk := binary.BigEndian.Uint16(pkt[c:])
		if chunk&0x8000 == 0 { // run length
			sym, n := chunk>>13&0x3, int(chunk&0x1fff)
			for range n {
				if !emit(sym) {
					return false
				}
			}
			continue
		}
		if chunk&0x4000 == 0 { // status vector, 14 one-bit symbols
			for i := 13; i >= 0; i-- {
				if !emit(chunk >> i & 1) {
					return false
				}
			}
			continue
		}
		for i := 6; i >= 0; i-- { // status vector, 7 two-bit symbols
			if !emit(chunk >> (2 * i) & 3) {
				return false
			}
		}
	}
	return true
}

// chunkLen is how many statuses a packet status chunk covers.
func chunkLen(chunk uint16) int {
	switch {
	case chunk&0x8000 == 0:
		return int(chunk & 0x1fff)
	case chunk&0x4000 == 0:
		return 14
	}
	return 7
}

// splitRTCP calls fn for each packet of a compound RTCP datagram; false if
// the lengths do not add up.
func splitRTCP(b []byte, fn func(pkt []byte)) bool {
	for len(b) > 0 {
		if len(b) < 4 || b[0]>>6 != 2 {
			return false
		}
		n := (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4
		if n > len(b) {
			return false
		}
		fn(b[:n])
		b = b[n:]
	}
	return true
}
