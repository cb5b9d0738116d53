package media

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/webrtc/v4"
)

// rtspPlan is what the SFU takes from an RTSP session description: at most
// one video and one audio track, and a message for each track it drops.
type rtspPlan struct {
	tracks  []rtspTrackPlan
	dropped []string
}

type rtspTrackPlan struct {
	media  *description.Media
	format format.Format
	kind   kind
	codec  int // codecTable index
}

// errRTSPUnplayable is a refusal whose message is meant for the host.
type errRTSPUnplayable struct{ msg string }

func (e errRTSPUnplayable) Error() string { return e.msg }

// Messages the host sees (RTSP status line, logs, studio notice).
const (
	msgAAC     = "AAC audio cannot be played by browsers; send Opus (ffmpeg: -c:a libopus) or G.711 (-c:a pcm_mulaw)"
	msgBFrames = "H264 with B-frames cannot be played by browsers; encode without them (x264: -bf 0 or -profile:v baseline)"
)

// planRTSP picks the tracks viewers can play. H264 whose SPS (from the SDP)
// allows reordering is refused outright, whatever the audio; unusable audio
// is only dropped when video is usable.
func planRTSP(desc *description.Session, codecs codecTable) (rtspPlan, error) {
	var p rtspPlan
	var have [numKinds]bool
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			k, codec, msg := classifyRTSPFormat(f, codecs)
			if msg == msgBFrames {
				return rtspPlan{}, errRTSPUnplayable{"video: " + msg}
			}
			if msg != "" {
				p.dropped = append(p.dropped, string(m.Type)+": "+msg)
				continue
			}
			if have[k] {
				continue // one track per kind, the first usable one
			}
			have[k] = true
			p.tracks = append(p.tracks, rtspTrackPlan{media: m, format: f, kind: k, codec: codec})
			break
		}
	}
	if len(p.tracks) == 0 {
		if len(p.dropped) == 0 {
			return rtspPlan{}, errRTSPUnplayable{"no audio or video track"}
		}
		return rtspPlan{}, errRTSPUnplayable{strings.Join(p.dropped, "; ")}
	}
	return p, nil
}

// classifyRTSPFormat maps an RTSP format onto the SFU's codec table, or says
// why a browser cannot play it.
func classifyRTSPFormat(f format.Format, codecs codecTable) (kind, int, string) {
	switch f := f.(type) {
	case *format.H264:
		sps, _ := f.SafeParams()
		if len(sps) > 0 {
			if reorder, known := spsReorders(sps); known && reorder {
				return kindVideo, -1, msgBFrames
			}
		}
		fmtp := "packetization-mode=1;profile-level-id=42e01f"
		if len(sps) >= 4 {
			fmtp = "packetization-mode=1;profile-level-id=" + hex.EncodeToString(sps[1:4])
		}
		return found(kindVideo, codecs.match(webrtc.MimeTypeH264, fmtp), "H264")
	case *format.VP8:
		return found(kindVideo, codecs.match(webrtc.MimeTypeVP8, ""), "VP8")
	case *format.Opus:
		return found(kindAudio, codecs.match(webrtc.MimeTypeOpus, ""), "Opus")
	case *format.G711:
		mime := webrtc.MimeTypePCMA
		if f.MULaw {
			mime = webrtc.MimeTypePCMU
		}
		if f.SampleRate != 8000 || f.ChannelCount != 1 {
			return kindAudio, -1, "G.711 must be 8 kHz mono for browsers"
		}
		return found(kindAudio, codecs.match(mime, ""), "G.711")
	case *format.MPEG4Audio:
		return classifyAAC(f, codecs, TranscoderAvailable())
	case *format.MPEG4AudioLATM:
		return classifyLATM(f, codecs, TranscoderAvailable())
	}
	return 0, -1, fmt.Sprintf("codec %s cannot be played by browsers; send H264 (no B-frames) or VP8 video and Opus or G.711 audio", f.Codec())
}

func found(k kind, codec int, name string) (kind, int, string) {
	if codec < 0 {
		return k, -1, name + " is not enabled for WebRTC viewers on this server"
	}
	return k, codec, ""
}

// readFormat is how a track is offered to RTSP readers: what the SFU sends
// viewers, with fixed payload types.
func (t rtspTrackPlan) readFormat() format.Format {
	switch f := t.format.(type) {
	case *format.H264:
		sps, pps := f.SafeParams()
		return &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
	case *format.VP8:
		return &format.VP8{PayloadTyp: 97}
	case *format.Opus, *format.MPEG4Audio, *format.MPEG4AudioLATM: // AAC is transcoded to Opus
		return &format.Opus{PayloadTyp: 111, ChannelCount: 2}
	case *format.G711:
		return &format.G711{PayloadTyp: f.PayloadTyp, MULaw: f.MULaw, SampleRate: f.SampleRate, ChannelCount: f.ChannelCount}
	}
	return nil
}
