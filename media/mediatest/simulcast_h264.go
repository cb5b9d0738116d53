package mediatest

import (
	"bytes"
	"crypto/sha256"

	"github.com/pion/rtp/codecs"
)

// H264Frame is one access unit a LayerViewer received (it must keep
// payloads), identified among pre-encoded layers: the H264 counterpart of
// a SimulcastPublisher's mark, found from the picture itself (its slices,
// byte for byte), so a frame that arrived incomplete or corrupted is
// identified as none.
type H264Frame struct {
	First, Last   int    // indexes of its first and last packet
	TS            uint32 // RTP timestamp (as received)
	Layer         int    // index into the layers; -1 if no frame of theirs matches
	Index         int    // frame index within the layer
	IDR, SPS, PPS bool   // NAL unit types it carries
	Marker        bool   // its last packet has the marker bit
}

// H264Index finds a frame of a set of layers by its slices.
type H264Index struct {
	frames map[[32]byte][2]int
}

// NewH264Index indexes layers (from EncodeLayers) by the slices of each
// frame.
func NewH264Index(layers []Layer) *H264Index {
	x := &H264Index{frames: map[[32]byte][2]int{}}
	for l, layer := range layers {
		for i, f := range layer.Frames {
			x.frames[sha256.Sum256(slices(f.Data))] = [2]int{l, i}
		}
	}
	return x
}

// Frames groups pkts (a viewer's video, in arrival order) into access
// units by timestamp, depacketizes each (RFC 6184: single NAL, STAP-A,
// FU-A) and identifies it.
func (x *H264Index) Frames(pkts []RecvPacket) []H264Frame {
	var out []H264Frame
	for i := 0; i < len(pkts); {
		j := i
		for j+1 < len(pkts) && pkts[j+1].TS == pkts[i].TS {
			j++
		}
		f := H264Frame{First: i, Last: j, TS: pkts[i].TS, Layer: -1, Marker: pkts[j].Marker}
		var d codecs.H264Packet
		var annexB []byte
		ok := true
		for k := i; k <= j; k++ {
			b, err := d.Unmarshal(pkts[k].Payload)
			if err != nil {
				ok = false
				break
			}
			annexB = append(annexB, b...)
		}
		if ok {
			for _, n := range nals(annexB) {
				switch n[0] & 0x1f {
				case 5:
					f.IDR = true
				case 7:
					f.SPS = true
				case 8:
					f.PPS = true
				}
			}
			if id, found := x.frames[sha256.Sum256(slices(annexB))]; found {
				f.Layer, f.Index = id[0], id[1]
			}
		}
		out = append(out, f)
		i = j + 1
	}
	return out
}

// slices concatenates the coded slices (NAL types 1 and 5) of an Annex-B
// access unit: what identifies a picture whatever parameter sets or SEI
// travel with it.
func slices(annexB []byte) []byte {
	var b []byte
	for _, n := range nals(annexB) {
		if t := n[0] & 0x1f; t == 1 || t == 5 {
			b = append(b, n...)
		}
	}
	return b
}

// nals splits Annex-B data at its start codes (3 or 4 bytes).
func nals(annexB []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+3 <= len(annexB); {
		if annexB[i] == 0 && annexB[i+1] == 0 && annexB[i+2] == 1 {
			if start >= 0 {
				out = appendNAL(out, annexB[start:i])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 {
		out = appendNAL(out, annexB[start:])
	}
	return out
}

func appendNAL(out [][]byte, n []byte) [][]byte {
	n = bytes.TrimRight(n, "\x00") // the leading zero of a 4-byte start code
	if len(n) > 0 {
		out = append(out, n)
	}
	return out
}
