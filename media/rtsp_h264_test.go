package media

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// depack reassembles NAL units from the packer's payloads (single, STAP-A,
// FU-A), checking the size bound on the way.
func depack(t testing.TB, payloads [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	var fu []byte
	for _, p := range payloads {
		if len(p) > rtspMaxPayload {
			t.Fatalf("payload of %d bytes, want <= %d", len(p), rtspMaxPayload)
		}
		switch p[0] & 0x1f {
		case naluSTAPA:
			for i := 1; i < len(p); {
				n := int(binary.BigEndian.Uint16(p[i:]))
				out = append(out, p[i+2:i+2+n])
				i += 2 + n
			}
		case naluFUA:
			if p[1]&0x80 != 0 {
				fu = []byte{p[0]&0xe0 | p[1]&0x1f}
			}
			fu = append(fu, p[2:]...)
			if p[1]&0x40 != 0 {
				out = append(out, fu)
				fu = nil
			}
		default:
			out = append(out, p)
		}
	}
	return out
}

func packAll(h *h264Packer, au [][]byte) (payloads [][]byte, markers int) {
	h.pack(au, func(p []byte, m bool) {
		payloads = append(payloads, bytes.Clone(p))
		if m {
			markers++
		}
	})
	return payloads, markers
}

// Slice headers: first_mb_in_slice = 0 ("1"), then slice_type.
var (
	sps      = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	pps      = []byte{0x68, 0xce, 0x3c, 0x80}
	sliceP   = []byte{0x41, 0b1_1_000000, 0x11} // slice_type 0 (P): "1" "1"
	sliceB   = []byte{0x01, 0b1_010_0000, 0x22} // slice_type 1 (B): "1" "010"
	sliceB6  = []byte{0x01, 0b1_00111_00, 0x22} // slice_type 6 (B): "1" "00111"
	idrSlice = append([]byte{0x65, 0b1_0001000}, bytes.Repeat([]byte{0xab}, 5000)...)
)

func TestH264PackKeyframe(t *testing.T) {
	h := &h264Packer{}
	h.setParams(sps, pps)
	for _, tc := range []struct {
		name string
		au   [][]byte
	}{
		{"idr alone gets parameter sets", [][]byte{idrSlice}},
		{"idr with its own parameter sets", [][]byte{{0x09, 0xf0}, sps, pps, idrSlice}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payloads, markers := packAll(h, tc.au)
			if markers != 1 {
				t.Fatalf("got %d markers, want 1", markers)
			}
			got := depack(t, payloads)
			want := [][]byte{sps, pps, idrSlice}
			if len(got) != len(want) {
				t.Fatalf("got %d NAL units, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("NAL unit %d differs", i)
				}
			}
			if !h264KeyframeStart(payloads[0]) {
				t.Fatalf("first payload does not start a keyframe: % x", payloads[0][:4])
			}
		})
	}
	payloads, _ := packAll(h, [][]byte{sliceP})
	if len(payloads) != 1 || !bytes.Equal(payloads[0], sliceP) {
		t.Fatalf("P slice: got %x, want it as one single-NAL packet", payloads)
	}
}

func TestH264BFrames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nalu  []byte
		wantB bool
	}{
		{"P", sliceP, false},
		{"B", sliceB, true},
		{"B (type 6)", sliceB6, true},
		{"I", idrSlice, false},
		{"truncated", []byte{0x01}, false},
		{"emulation prevention", []byte{0x01, 0x00, 0x00, 0x03, 0x01}, false},
	} {
		if got := sliceIsB(tc.nalu); got != tc.wantB {
			t.Errorf("%s: sliceIsB = %v, want %v", tc.name, got, tc.wantB)
		}
	}
	h := &h264Packer{}
	if payloads, _ := packAll(h, [][]byte{sliceB}); len(payloads) != 0 || !h.bframes {
		t.Fatalf("B slice: got %d payloads, bframes=%v; want none and true", len(payloads), h.bframes)
	}
	// The committed clip is constrained baseline: no reordering, and the SPS says so.
	raw, err := os.ReadFile("testdata/clip.h264")
	if err != nil {
		t.Fatal(err)
	}
	var clipSPS []byte
	for _, n := range bytes.Split(raw, []byte{0, 0, 1}) {
		if len(n) > 0 && n[0]&0x1f == naluSPS {
			clipSPS = bytes.TrimRight(n, "\x00")
			break
		}
	}
	if reorder, known := spsReorders(clipSPS); !known || reorder {
		t.Fatalf("clip SPS % x: reorder=%v known=%v, want false true", clipSPS, reorder, known)
	}
}

func FuzzH264Pack(f *testing.F) {
	f.Add(append(append([]byte{byte(len(sps))}, sps...), append([]byte{byte(len(pps))}, pps...)...))
	f.Add([]byte{3, 0x41, 0xc0, 0x11, 3, 0x01, 0xa0, 0x22})
	f.Add([]byte{0xff, 0x65, 0x88, 0, 0, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		// data: length-prefixed NAL units (one byte length); the tail
		// repeated to reach fragmenting sizes.
		var au [][]byte
		for i := 0; i < len(data); {
			n := int(data[i])
			i++
			end := min(i+n, len(data))
			nalu := data[i:end]
			if n > 200 && len(nalu) > 0 {
				nalu = bytes.Repeat(nalu, 3000/len(nalu)+1)
			}
			au = append(au, nalu)
			i = end
		}
		h := &h264Packer{}
		payloads, markers := packAll(h, au)
		if len(payloads) > 0 && markers != 1 {
			t.Fatalf("got %d markers for %d payloads", markers, len(payloads))
		}
		for _, p := range payloads {
			if len(p) == 0 || len(p) > rtspMaxPayload {
				t.Fatalf("payload of %d bytes", len(p))
			}
		}
		_ = h264KeyframeStart(payloads0(payloads))
	})
}

func payloads0(p [][]byte) []byte {
	if len(p) == 0 {
		return nil
	}
	return p[0]
}
