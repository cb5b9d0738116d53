package media

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// oggCRC is the Ogg page checksum: CRC-32, polynomial 0x04c11db7, no
// reflection, initial value 0.
func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// writeOggPage appends one page holding the given packets (each must fit
// the page's 255 lacing values).
func writeOggPage(w *bytes.Buffer, flags byte, granule int64, seq uint32, pkts ...[]byte) {
	var lacing, body []byte
	for _, p := range pkts {
		n := len(p)
		for ; n >= 255; n -= 255 {
			lacing = append(lacing, 255)
		}
		lacing = append(lacing, byte(n))
		body = append(body, p...)
	}
	page := make([]byte, 27, 27+len(lacing)+len(body))
	copy(page, "OggS")
	page[5] = flags
	binary.LittleEndian.PutUint64(page[6:], uint64(granule))
	binary.LittleEndian.PutUint32(page[14:], 1) // serial
	binary.LittleEndian.PutUint32(page[18:], seq)
	page[26] = byte(len(lacing))
	page = append(append(page, lacing...), body...)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
	w.Write(page)
}

// WriteOggOpus writes Opus packets as an Ogg/Opus file with pre-skip 0, so
// a decoder outputs every sample of every packet: tests measure timing on
// the decoded audio.
func WriteOggOpus(path string, channels int, pkts [][]byte) error {
	var w bytes.Buffer
	head := []byte("OpusHead\x01")
	head = append(head, byte(channels), 0, 0) // pre-skip 0
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0) // gain, mapping family 0
	writeOggPage(&w, 0x02, 0, 0, head)
	writeOggPage(&w, 0, 0, 1, []byte("OpusTags\x04\x00\x00\x00test\x00\x00\x00\x00"))
	var granule int64
	for i, p := range pkts {
		granule += int64(opusSamples(p))
		flags := byte(0)
		if i == len(pkts)-1 {
			flags = 0x04
		}
		writeOggPage(&w, flags, granule, uint32(i+2), p)
	}
	return os.WriteFile(path, w.Bytes(), 0o644)
}

// TestTranscodeOggReader: packets come back whole, across lacing runs of
// 255 and across pages; a bad capture pattern is an error.
func TestTranscodeOggReader(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 600) // 255+255+90: three lacing values
	exact := bytes.Repeat([]byte{8}, 510)
	var w bytes.Buffer
	writeOggPage(&w, 0, 10, 0, []byte("a"), big, []byte("b"))
	writeOggPage(&w, 0, 20, 1, exact) // ends with 255,255,0
	// A packet split over two pages: the first page ends on a 255 run.
	split := bytes.Repeat([]byte{9}, 300)
	page := new(bytes.Buffer)
	writeOggPage(page, 0, -1, 2, split[:255])
	p := page.Bytes()
	// Drop the terminating 0 lacing value: the packet goes on.
	p = append(p[:26], append([]byte{1, 255}, p[29:]...)...)
	p[26] = 1
	binary.LittleEndian.PutUint32(p[22:], 0)
	binary.LittleEndian.PutUint32(p[22:], oggCRC(p))
	w.Write(p)
	writeOggPage(&w, 0x01, 30, 3, split[255:])

	want := [][]byte{[]byte("a"), big, []byte("b"), exact, split}
	var got [][]byte
	var granules []int64
	r := newOggReader(&w)
	for {
		err := r.nextPage(func(pkt []byte, g int64, _ bool) {
			got = append(got, append([]byte(nil), pkt...))
			granules = append(granules, g)
		})
		if err != nil {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("packet %d: got %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
	if granules[4] != 30 {
		t.Errorf("split packet granule %d, want 30", granules[4])
	}

	if err := newOggReader(bytes.NewReader([]byte("NotOgg" + string(make([]byte, 30))))).nextPage(func([]byte, int64, bool) {}); err == nil {
		t.Error("bad capture pattern accepted")
	}
}

// TestTranscodeOpusSamples: durations from the TOC byte.
func TestTranscodeOpusSamples(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want int
	}{
		{[]byte{0xf8}, 960},        // CELT FB 20 ms, one frame
		{[]byte{0xf9}, 1920},       // two frames
		{[]byte{0xfb, 0x03}, 2880}, // code 3, three frames
		{[]byte{0x08}, 960},        // SILK NB 20 ms
		{[]byte{0xe0}, 120},        // CELT 2.5 ms
		{nil, 0},
	} {
		if got := opusSamples(tc.pkt); got != tc.want {
			t.Errorf("opusSamples(%x) = %d, want %d", tc.pkt, got, tc.want)
		}
	}
}

// FuzzTranscodeOggReader: any byte stream ends in an error or EOF, never a
// panic, and packets stay within the bound.
func FuzzTranscodeOggReader(f *testing.F) {
	var w bytes.Buffer
	writeOggPage(&w, 0x02, 0, 0, []byte("OpusHead\x01\x02\x00\x00"))
	writeOggPage(&w, 0, 960, 1, []byte{0xf8, 1, 2, 3}, bytes.Repeat([]byte{1}, 300))
	f.Add(w.Bytes())
	f.Add([]byte("OggS\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newOggReader(bytes.NewReader(b))
		for range 1000 {
			err := r.nextPage(func(pkt []byte, _ int64, _ bool) {
				if len(pkt) > oggMaxPacket+255*255 {
					t.Fatalf("packet of %d bytes", len(pkt))
				}
				_ = opusSamples(pkt)
			})
			if err != nil {
				return
			}
		}
	})
}
