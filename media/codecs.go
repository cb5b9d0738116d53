package media

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// family is what the hot path needs to know about a codec: how to spot a
// keyframe. Payload types differ per peer; families do not.
type family uint8

const (
	famH264 family = iota + 1
	famVP8
	famOpus
	famPCMU // G.711 µ-law
	famPCMA // G.711 A-law
)

// codecSpec is one entry the SFU registers with its MediaEngine. The index
// of a spec in codecTable is what packets carry: a viewer's binding maps it to
// the payload type that viewer negotiated.
type codecSpec struct {
	params webrtc.RTPCodecParameters
	kind   webrtc.RTPCodecType
	fam    family
}

// maxCodecs bounds codecTable so bindings can use a fixed array.
const maxCodecs = 16

// codecTable is immutable after newCodecTable.
type codecTable []codecSpec

func h264Spec(pt webrtc.PayloadType, profileLevelID string, fb []webrtc.RTCPFeedback) codecSpec {
	return codecSpec{
		params: webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:     webrtc.MimeTypeH264,
				ClockRate:    90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID,
				RTCPFeedback: fb,
			},
			PayloadType: pt,
		},
		kind: webrtc.RTPCodecTypeVideo,
		fam:  famH264,
	}
}

// newCodecTable lists what the SFU accepts. H264 comes in the profiles OBS and
// browsers send (constrained baseline 42e01f, baseline 42001f, main 4d001f,
// constrained high 640c1f and high 64001f, all packetization-mode 1) because
// H264 answers must echo the offered profile exactly.
func newCodecTable() codecTable {
	fb := []webrtc.RTCPFeedback{
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
		{Type: "transport-cc"},
	}
	return codecTable{
		h264Spec(102, "42e01f", fb),
		h264Spec(104, "42001f", fb),
		h264Spec(106, "4d001f", fb),
		h264Spec(108, "640c1f", fb),
		h264Spec(110, "64001f", fb),
		{
			params: webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb,
				},
				PayloadType: 96,
			},
			kind: webrtc.RTPCodecTypeVideo,
			fam:  famVP8,
		},
		{
			params: webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
					SDPFmtpLine:  "minptime=10;useinbandfec=1",
					RTCPFeedback: []webrtc.RTCPFeedback{{Type: "transport-cc"}},
				},
				PayloadType: 111,
			},
			kind: webrtc.RTPCodecTypeAudio,
			fam:  famOpus,
		},
		// G.711 after Opus: table order is the SFU's preference (see
		// preferOpus). Static payload types; "PCMU/8000" is mono, and pion's
		// own registration leaves Channels at 0 for these.
		g711Spec(webrtc.MimeTypePCMU, 0, famPCMU),
		g711Spec(webrtc.MimeTypePCMA, 8, famPCMA),
	}
}

func g711Spec(mime string, pt webrtc.PayloadType, fam family) codecSpec {
	return codecSpec{
		params: webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 8000},
			PayloadType:        pt,
		},
		kind: webrtc.RTPCodecTypeAudio,
		fam:  fam,
	}
}

func (t codecTable) register(m *webrtc.MediaEngine) error {
	for _, c := range t {
		if err := m.RegisterCodec(c.params, c.kind); err != nil {
			return err
		}
	}
	return nil
}

// match returns the index of the spec c corresponds to, exact (family and
// format parameters) first, then by family; -1 if none.
func (t codecTable) match(mime, fmtp string) int {
	fam := familyOf(mime)
	if fam == 0 {
		return -1
	}
	fallback := -1
	for i, s := range t {
		if s.fam != fam {
			continue
		}
		if fam != famH264 {
			return i
		}
		if !h264Usable(fmtp) {
			return -1
		}
		if h264SameProfile(s.params.SDPFmtpLine, fmtp) {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

func familyOf(mime string) family {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return famH264
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return famVP8
	case strings.EqualFold(mime, webrtc.MimeTypeOpus):
		return famOpus
	case strings.EqualFold(mime, webrtc.MimeTypePCMU):
		return famPCMU
	case strings.EqualFold(mime, webrtc.MimeTypePCMA):
		return famPCMA
	}
	return 0
}

// fmtpParam returns one parameter of an a=fmtp value ("k=v;k=v").
func fmtpParam(fmtp, key string) (string, bool) {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// h264Usable: the SFU forwards FU-A and STAP-A, so it needs packetization-mode 1.
func h264Usable(fmtp string) bool {
	pm, _ := fmtpParam(fmtp, "packetization-mode")
	return pm == "1"
}

// h264SameProfile compares profile_idc and profile-iop (the first two bytes
// of profile-level-id); the level may differ (RFC 6184 8.2.2).
func h264SameProfile(a, b string) bool {
	pa, okA := fmtpParam(a, "profile-level-id")
	pb, okB := fmtpParam(b, "profile-level-id")
	if !okA || !okB || len(pa) < 4 || len(pb) < 4 {
		return false
	}
	return strings.EqualFold(pa[:4], pb[:4])
}

// pick chooses, among a peer's negotiated codecs, the payload type to use for
// spec i: an exact match if there is one, else any codec of the same family.
func (t codecTable) pick(i int, negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	want := t[i]
	var fallback *webrtc.RTPCodecParameters
	for j := range negotiated {
		c := &negotiated[j]
		if familyOf(c.MimeType) != want.fam {
			continue
		}
		if want.fam != famH264 || h264SameProfile(want.params.SDPFmtpLine, c.SDPFmtpLine) {
			return *c, true
		}
		if fallback == nil && h264Usable(c.SDPFmtpLine) {
			fallback = c
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

func kindToRTP(k kind) webrtc.RTPCodecType {
	if k == kindVideo {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}
