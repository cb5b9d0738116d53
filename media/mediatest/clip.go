package mediatest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Clip is test media loaded into memory.
type Clip struct {
	H264 []Frame // access units, Annex-B
	VP8  []Frame
	Opus []OpusPacket
}

// Frame is one video frame; IDR marks a keyframe.
type Frame struct {
	Data []byte
	IDR  bool
}

// OpusPacket is one Opus packet and its duration.
type OpusPacket struct {
	Data     []byte
	Duration time.Duration
}

// TestdataDir is media/testdata, found relative to this source file (tests
// always run with the source tree present).
func TestdataDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "testdata"
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// LoadClip reads clip.h264 (Annex-B), clip.ivf (VP8) and clip.ogg (Opus)
// from dir; "" = the committed clips in media/testdata.
func LoadClip(dir string) (*Clip, error) {
	if dir == "" {
		dir = TestdataDir()
	}
	c := &Clip{}
	var err error
	if c.H264, err = loadH264(filepath.Join(dir, "clip.h264")); err != nil {
		return nil, err
	}
	if c.VP8, err = loadIVF(filepath.Join(dir, "clip.ivf")); err != nil {
		return nil, err
	}
	if c.Opus, err = loadOpus(filepath.Join(dir, "clip.ogg")); err != nil {
		return nil, err
	}
	return c, nil
}

// nextKeyframe returns the index of the first keyframe at or after i,
// wrapping around.
func nextKeyframe(frames []Frame, i int) int {
	for j := i; j < len(frames); j++ {
		if frames[j].IDR {
			return j
		}
	}
	for j := range frames {
		if frames[j].IDR {
			return j
		}
	}
	return i
}

func loadIVF(name string) ([]Frame, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var frames []Frame
	for {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		// VP8 frame tag: bit 0 clear = keyframe (RFC 6386 9.1).
		frames = append(frames, Frame{Data: data, IDR: len(data) > 0 && data[0]&1 == 0})
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no frames", name)
	}
	return frames, nil
}

func loadH264(name string) ([]Frame, error) {
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, err := h264reader.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var frames []Frame
	var cur Frame
	hasVCL := false
	flush := func() {
		if len(cur.Data) > 0 {
			frames = append(frames, cur)
		}
		cur, hasVCL = Frame{}, false
	}
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t := nal.UnitType
		// An access unit starts at an AUD, or at an SPS or slice once the
		// current unit already has a slice (single-slice streams).
		if t == h264reader.NalUnitTypeAUD ||
			(hasVCL && (t == h264reader.NalUnitTypeSPS || t == h264reader.NalUnitTypeCodedSliceIdr || t == h264reader.NalUnitTypeCodedSliceNonIdr)) {
			flush()
		}
		if t == h264reader.NalUnitTypeAUD {
			continue
		}
		if t == h264reader.NalUnitTypeCodedSliceIdr || t == h264reader.NalUnitTypeCodedSliceNonIdr {
			hasVCL = true
		}
		if t == h264reader.NalUnitTypeCodedSliceIdr {
			cur.IDR = true
		}
		cur.Data = append(cur.Data, 0, 0, 0, 1)
		cur.Data = append(cur.Data, nal.Data...)
	}
	flush()
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no frames", name)
	}
	return frames, nil
}

func loadOpus(name string) ([]OpusPacket, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []OpusPacket
	var last uint64
	for {
		page, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
			continue
		}
		d := 20 * time.Millisecond
		// Granule positions count 48 kHz samples; the first page's includes
		// the pre-skip, so only trust plausible differences.
		if last != 0 && hdr.GranulePosition > last {
			if g := time.Duration(hdr.GranulePosition-last) * time.Second / 48000; g > 0 && g <= 120*time.Millisecond {
				d = g
			}
		}
		last = hdr.GranulePosition
		out = append(out, OpusPacket{Data: page, Duration: d})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no opus packets", name)
	}
	return out, nil
}
