package media

import (
	"strings"
	"testing"
)

// Payloads as pion's H264 packetizer and libvpx emit them.
var (
	stapSPSPPS  = []byte{0x78, 0x00, 0x03, 0x67, 0x42, 0xc0, 0x00, 0x02, 0x68, 0xce}
	stapPPSOnly = []byte{0x78, 0x00, 0x02, 0x68, 0xce}
	fuaIDRStart = []byte{0x7c, 0x85, 0x88, 0x84}
	fuaIDRMid   = []byte{0x7c, 0x05, 0x88, 0x84}
	fuaPStart   = []byte{0x5c, 0x81, 0x9a, 0x00}
	singleIDR   = []byte{0x65, 0x88, 0x84, 0x00}
	singleSPS   = []byte{0x67, 0x42, 0xc0, 0x1f}
	singleP     = []byte{0x41, 0x9a, 0x00}
	// VP8: descriptor with X, I (15-bit picture id), then payload header.
	vp8Key      = []byte{0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00}
	vp8Inter    = []byte{0x90, 0x80, 0x80, 0x01, 0x11, 0x02, 0x00}
	vp8KeyCont  = []byte{0x80, 0x80, 0x80, 0x01, 0x10}
	vp8KeyShort = []byte{0x10, 0x10}
)

func TestCodecTable(t *testing.T) {
	table := newCodecTable()
	if len(table) > maxCodecs {
		t.Fatalf("codec table has %d entries, bindings hold %d", len(table), maxCodecs)
	}
	cases := []struct {
		mime, fmtp string
		wantFmtp   string // of the matched entry; "" = no match
	}{
		{"video/H264", "packetization-mode=1;profile-level-id=42e01f", "profile-level-id=42e01f"},
		{"video/h264", "profile-level-id=640c1f;packetization-mode=1", "profile-level-id=640c1f"},
		{"video/H264", "packetization-mode=1;profile-level-id=64001f", "profile-level-id=64001f"},
		{"video/H264", "packetization-mode=1;profile-level-id=4d0032", "profile-level-id=4d001f"}, // level may differ
		{"video/H264", "packetization-mode=1;profile-level-id=f4001f", "profile-level-id=42e01f"}, // unknown profile: family fallback
		{"video/H264", "packetization-mode=0;profile-level-id=42e01f", ""},
		{"video/VP8", "", "VP8"},
		{"audio/opus", "minptime=10", "opus"},
		{"video/VP9", "profile-id=0", ""},
	}
	for _, c := range cases {
		i := table.match(c.mime, c.fmtp)
		switch {
		case c.wantFmtp == "" && i >= 0:
			t.Errorf("match(%s %s): got %d, want none", c.mime, c.fmtp, i)
		case c.wantFmtp != "" && i < 0:
			t.Errorf("match(%s %s): got none, want %s", c.mime, c.fmtp, c.wantFmtp)
		case c.wantFmtp != "" && !strings.Contains(table[i].params.SDPFmtpLine+table[i].params.MimeType, c.wantFmtp):
			t.Errorf("match(%s %s): got %s %s, want %s", c.mime, c.fmtp, table[i].params.MimeType, table[i].params.SDPFmtpLine, c.wantFmtp)
		}
	}
}

func TestKeyframeStart(t *testing.T) {
	cases := []struct {
		name    string
		fam     family
		payload []byte
		want    bool
	}{
		{"h264 empty", famH264, nil, false},
		{"h264 stap-a sps+pps", famH264, stapSPSPPS, true},
		{"h264 stap-a pps only", famH264, stapPPSOnly, false},
		{"h264 stap-a truncated", famH264, stapSPSPPS[:4], false},
		{"h264 stap-a zero size", famH264, []byte{0x78, 0x00, 0x00, 0x67}, false},
		{"h264 fu-a idr start", famH264, fuaIDRStart, true},
		{"h264 fu-a idr middle", famH264, fuaIDRMid, false},
		{"h264 fu-a p start", famH264, fuaPStart, false},
		{"h264 fu-a header only", famH264, []byte{0x7c}, false},
		{"h264 single idr", famH264, singleIDR, true},
		{"h264 single sps", famH264, singleSPS, true},
		{"h264 single p", famH264, singleP, false},
		{"vp8 keyframe", famVP8, vp8Key, true},
		{"vp8 interframe", famVP8, vp8Inter, false},
		{"vp8 not partition start", famVP8, vp8KeyCont, false},
		{"vp8 minimal keyframe", famVP8, vp8KeyShort, true},
		{"vp8 truncated after X", famVP8, []byte{0x90}, false},
		{"vp8 truncated picture id", famVP8, []byte{0x90, 0x80, 0x80}, false},
		{"opus never", famOpus, singleIDR, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := isKeyframeStart(c.fam, c.payload); got != c.want {
				t.Errorf("isKeyframeStart(%x): got %v, want %v", c.payload, got, c.want)
			}
		})
	}
}

func FuzzKeyframeStart(f *testing.F) {
	for _, p := range [][]byte{stapSPSPPS, stapPPSOnly, fuaIDRStart, fuaIDRMid, singleIDR, singleP} {
		f.Add(uint8(famH264), p)
	}
	for _, p := range [][]byte{vp8Key, vp8Inter, vp8KeyCont, vp8KeyShort} {
		f.Add(uint8(famVP8), p)
	}
	f.Fuzz(func(t *testing.T, fam uint8, p []byte) {
		got := isKeyframeStart(family(fam%4), p) // must not panic on any input
		if got && len(p) == 0 {
			t.Fatalf("keyframe in an empty payload")
		}
		if family(fam%4) == famH264 && len(p) > 0 {
			if nt := p[0] & 0x1f; (nt == naluIDR || nt == naluSPS) && !got {
				t.Fatalf("single NAL type %d not detected", nt)
			}
		}
	})
}

func BenchmarkKeyframeStart(b *testing.B) {
	payloads := []struct {
		fam family
		p   []byte
	}{
		{famH264, stapSPSPPS}, {famH264, fuaIDRMid}, {famH264, fuaPStart}, {famH264, singleP}, {famVP8, vp8Inter},
	}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		c := payloads[i%len(payloads)]
		if isKeyframeStart(c.fam, c.p) {
			n++
		}
	}
	if n == 0 {
		b.Fatal("no keyframe detected")
	}
}
