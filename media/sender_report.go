package media

import (
	"time"

	"github.com/pion/rtcp"
)

// Sender reports to viewers come from the room clock, not from pion's
// sender-report interceptor (not registered, see engine.go): that one stamps
// each report with the time the SFU sent the packet, i.e. with arrival
// times, so a source that delivers one kind late (a transcoder's audio)
// plays out of sync in browsers. Here NTP = the room clock's wall time and
// RTP = the viewer's outgoing timestamp for the same room-clock instant, so
// every viewer of a room gets one consistent mapping for both kinds — the
// source's own, where it reported one (clock.go).

// senderReportInterval is how often a viewer gets a report per stream
// (RFC 3550 asks for about 5 s at these rates; browsers sync sooner with 1 s).
const senderReportInterval = time.Second

// sentCounts is what one viewer's writer sent on one stream, for reports.
type sentCounts struct {
	packets, octets uint32
}

// senderReports builds the reports for v's streams at now; nil kinds or
// streams that sent nothing yet are skipped. Runs on v's writer goroutine.
func (v *viewer) senderReports(now time.Time, sent *[numKinds]sentCounts) []rtcp.Packet {
	var out []rtcp.Packet
	for k, dt := range v.tracks {
		if dt == nil || sent[k].packets == 0 {
			continue
		}
		b := dt.b.Load()
		f := v.r.forwarders[k]
		var tsOff uint32
		if kind(k) == kindVideo && v.out.have {
			// The layer being sent, with this viewer's offset onto it.
			f, tsOff = v.r.layers[v.out.slot], v.out.tsOff
		}
		m := f.tmPub.Load()
		if b == nil || m == nil {
			continue
		}
		pts := f.clk.since(now)
		out = append(out, &rtcp.SenderReport{
			SSRC:        b.ssrc,
			NTPTime:     toNTP(f.clk.wall(pts)),
			RTPTime:     m.tsAt(pts) + tsOff,
			PacketCount: sent[k].packets,
			OctetCount:  sent[k].octets,
		})
	}
	return out
}

// sendReports writes v's sender reports; a viewer without a PeerConnection
// (unit tests) or one already closed is skipped.
func (v *viewer) sendReports(sent *[numKinds]sentCounts) {
	if v.pc == nil {
		return
	}
	if pkts := v.senderReports(time.Now(), sent); len(pkts) > 0 {
		_ = v.pc.WriteRTCP(pkts) // fails only once closed
	}
}

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

func toNTP(t time.Time) uint64 {
	ns := t.UnixNano()
	secs := uint64(ns/1e9) + ntpEpochOffset
	frac := uint64(ns%1e9) << 32 / 1e9
	return secs<<32 | frac
}

func fromNTP(ntp uint64) time.Time {
	secs := int64(ntp>>32) - ntpEpochOffset
	frac := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs, frac)
}
