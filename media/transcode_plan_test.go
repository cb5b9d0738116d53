package media

import (
	"errors"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// TestTranscodeRTSPPlanAAC: RTSP AAC becomes an Opus track when the server
// can transcode, and is dropped with the reason when it cannot.
func TestTranscodeRTSPPlanAAC(t *testing.T) {
	tab := newCodecTable()
	aac := &format.MPEG4Audio{PayloadTyp: 96, Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}

	k, codec, msg := classifyAAC(aac, tab, nil)
	if k != kindAudio || codec < 0 || msg != "" {
		t.Fatalf("with a transcoder: kind %v codec %d msg %q, want audio, a codec, no message", k, codec, msg)
	}
	if got := tab[codec].params.MimeType; !strings.EqualFold(got, "audio/opus") {
		t.Errorf("codec %s, want Opus", got)
	}

	_, codec, msg = classifyAAC(aac, tab, errors.New("ffmpeg not found on PATH"))
	if codec >= 0 || !strings.Contains(msg, "AAC audio cannot be played by browsers") || !strings.Contains(msg, "ffmpeg not found") {
		t.Errorf("without a transcoder: codec %d msg %q, want dropped with the reason", codec, msg)
	}

	if _, codec, _ := classifyAAC(&format.MPEG4Audio{PayloadTyp: 96}, tab, nil); codec >= 0 {
		t.Errorf("AAC without config: codec %d, want dropped", codec)
	}
}

// TestTranscodeRTSPPlanLATM: AAC in LATM with its config in the SDP is
// transcoded; without it (cpresent=1), or without a transcoder, it is
// dropped with the reason.
func TestTranscodeRTSPPlanLATM(t *testing.T) {
	tab := newCodecTable()
	asc := &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2, ChannelCount: 2}
	latm := &format.MPEG4AudioLATM{PayloadTyp: 96, StreamMuxConfig: &mpeg4audio.StreamMuxConfig{
		Programs: []*mpeg4audio.StreamMuxConfigProgram{{Layers: []*mpeg4audio.StreamMuxConfigLayer{{AudioSpecificConfig: asc}}}}}}
	k, codec, msg := classifyLATM(latm, tab, nil)
	if k != kindAudio || codec < 0 || msg != "" {
		t.Fatalf("config in the SDP: kind %v codec %d msg %q, want audio, a codec, no message", k, codec, msg)
	}
	if got := tab[codec].params.MimeType; !strings.EqualFold(got, "audio/opus") {
		t.Errorf("codec %s, want Opus", got)
	}
	if _, codec, msg := classifyLATM(&format.MPEG4AudioLATM{PayloadTyp: 96, CPresent: true}, tab, nil); codec >= 0 || !strings.Contains(msg, "cpresent=1") {
		t.Errorf("in-band config: codec %d msg %q, want dropped, saying cpresent", codec, msg)
	}
	if _, codec, msg := classifyLATM(latm, tab, errors.New("ffmpeg not found on PATH")); codec >= 0 || !strings.Contains(msg, "ffmpeg not found") {
		t.Errorf("without a transcoder: codec %d msg %q, want dropped with the reason", codec, msg)
	}
}
