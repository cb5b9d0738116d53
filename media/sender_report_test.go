package media

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func audioPacket(seq uint16, ts uint32) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 43, Marker: true}, Payload: []byte{0xfc, 1, 2}}
}

// TestClockFollowsSourceReports: a source delivers audio 300 ms after the
// video captured at the same instant. With its sender reports the room
// clock gives both the same PTS, and the viewer's sender reports map both
// outgoing timestamps to the same NTP time; without reports, arrival rules
// (and the two differ by the delay).
func TestClockFollowsSourceReports(t *testing.T) {
	const delay = 300 * time.Millisecond
	for _, reports := range []bool{true, false} {
		t.Run(map[bool]string{true: "reported", false: "arrival"}[reports], func(t *testing.T) {
			s := bareSFU(t, 64)
			r := newRoom(s, "sync")
			rec := &recorder{}
			v := fakeViewer(t, r, rec.write)
			src := &fakeSource{host: "h"}
			vin := feed(t, r, src)
			ain := r.attach(src, kindAudio, s.codecs.match("audio/opus", ""))
			rd := openReader(t, r, ReaderOptions{})
			// Source clock: capture instant c has video ts 1000+90c and
			// audio ts 5000+48c (c in ms), NTP srcEpoch+c.
			srcEpoch := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			if reports {
				vin.senderReport(srcEpoch, 1000)
				ain.senderReport(srcEpoch, 5000)
			}
			c := uint32(40) // both captured at 40 ms
			vin.writeRTP(h264Packet(1, 1000+90*c, stap(stapSPSPPS[3:6], stapSPSPPS[8:], []byte{0x65, 1})))
			time.Sleep(delay)
			ain.writeRTP(audioPacket(1, 5000+48*c))
			vau, err := readAU(t, rd)
			if err != nil {
				t.Fatal(err)
			}
			aau, err := readAU(t, rd)
			if err != nil {
				t.Fatal(err)
			}
			skew := aau.PTS - vau.PTS
			sent := rec.waitLen(t, 2)
			var counts [numKinds]sentCounts
			counts[kindVideo].packets, counts[kindAudio].packets = 1, 1
			var ntp [numKinds]time.Time
			for _, p := range v.senderReports(time.Now(), &counts) {
				sr := p.(*rtcp.SenderReport)
				k, rate := kindVideo, 90000.0
				if sr.SSRC == 1000+uint32(kindAudio) {
					k, rate = kindAudio, 48000.0
				}
				var ts uint32
				for _, p := range sent {
					if p.ssrc == sr.SSRC {
						ts = p.ts
					}
				}
				// NTP of the packet's timestamp by this report's mapping.
				ntp[k] = fromNTP(sr.NTPTime).Add(time.Duration(float64(int32(ts-sr.RTPTime)) / rate * float64(time.Second)))
			}
			srSkew := ntp[kindAudio].Sub(ntp[kindVideo])
			t.Logf("PTS skew %v, sender-report skew %v", skew, srSkew)
			if reports {
				if skew.Abs() > 5*time.Millisecond || srSkew.Abs() > 5*time.Millisecond {
					t.Errorf("skew %v (PTS), %v (sender reports), want ~0: the source said both were captured together", skew, srSkew)
				}
			} else if skew < delay-50*time.Millisecond || srSkew < delay-50*time.Millisecond {
				t.Errorf("skew %v (PTS), %v (sender reports), want about the arrival delay %v", skew, srSkew, delay)
			}
		})
	}
}

func TestNTPRoundTrip(t *testing.T) {
	now := time.Now()
	if d := fromNTP(toNTP(now)).Sub(now).Abs(); d > time.Microsecond {
		t.Fatalf("NTP round trip off by %v", d)
	}
}
