package media

import (
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/webrtc/v4"
)

// TestG711InCodecTable: PCMU and PCMA are audio codecs of the table, found
// from SDP and RTSP, and a down-track sends them with the viewer's PT.
func TestG711InCodecTable(t *testing.T) {
	tab := newCodecTable()
	opus := tab.match(webrtc.MimeTypeOpus, "")
	for _, c := range []struct {
		mime string
		pt   webrtc.PayloadType
		g711 *format.G711
	}{
		{webrtc.MimeTypePCMU, 0, &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}},
		{webrtc.MimeTypePCMA, 8, &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}},
	} {
		i := tab.match(c.mime, "")
		if i < 0 || tab[i].kind != webrtc.RTPCodecTypeAudio || tab[i].params.PayloadType != c.pt || tab[i].params.ClockRate != 8000 {
			t.Fatalf("%s: index %d", c.mime, i)
		}
		if i < opus {
			t.Errorf("%s comes before Opus in the table", c.mime)
		}
		negotiated := []webrtc.RTPCodecParameters{
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 109},
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: c.mime, ClockRate: 8000}, PayloadType: c.pt},
		}
		got, ok := tab.pick(i, negotiated)
		if !ok || got.PayloadType != c.pt {
			t.Errorf("%s: pick %v %v", c.mime, got.PayloadType, ok)
		}
		k, idx, msg := classifyRTSPFormat(c.g711, tab)
		if k != kindAudio || idx != i || msg != "" {
			t.Errorf("RTSP %s: kind %v index %d msg %q", c.mime, k, idx, msg)
		}
		p, err := planRTSP(&description.Session{Medias: []*description.Media{{Type: description.MediaTypeAudio, Formats: []format.Format{c.g711}}}}, tab)
		if err != nil || len(p.tracks) != 1 || len(p.dropped) != 0 {
			t.Errorf("RTSP plan %s: %+v %v", c.mime, p, err)
		}
	}
	if _, _, msg := classifyRTSPFormat(&format.G711{MULaw: true, SampleRate: 16000, ChannelCount: 1}, tab); msg == "" {
		t.Errorf("16 kHz G.711 accepted")
	}
}

func TestCheckOfferG711(t *testing.T) {
	for _, offer := range []string{
		"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n",
		"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 8\r\na=recvonly\r\n", // static PT, no rtpmap
	} {
		usable, err := checkOffer(offer, newCodecTable(), false)
		if err != nil || !usable[kindAudio] || usable[kindVideo] {
			t.Errorf("usable %v err %v for\n%s", usable, err, offer)
		}
	}
}

func TestPreferOpus(t *testing.T) {
	const tail = "a=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:8 PCMA/8000\r\n"
	cases := []struct{ in, want string }{
		{"m=audio 9 UDP/TLS/RTP/SAVPF 0 111 8\r\n" + tail, "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n" + tail},
		{"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n" + tail, "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n" + tail},
		// no Opus, or video: unchanged
		{"m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\na=rtpmap:0 PCMU/8000\r\n", "m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\na=rtpmap:0 PCMU/8000\r\n"},
		{"m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\n"},
		// rtpmaps of another section do not count
		{"m=audio 9 RTP/AVP 0 8\r\nm=audio 9 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\n", "m=audio 9 RTP/AVP 0 8\r\nm=audio 9 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\n"},
		// LF line endings
		{"m=audio 9 RTP/AVP 8 111\na=rtpmap:111 opus/48000/2\n", "m=audio 9 RTP/AVP 111 8\na=rtpmap:111 opus/48000/2\n"},
	}
	for _, c := range cases {
		head := "v=0\r\ns=-\r\n"
		if got := preferOpus(head + c.in); got != head+c.want {
			t.Errorf("preferOpus(%q)\n got %q\nwant %q", c.in, strings.TrimPrefix(got, head), c.want)
		}
	}
}
