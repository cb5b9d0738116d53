package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// oggReader splits an Ogg stream (RFC 3533) into packets: enough to read
// ffmpeg's Ogg/Opus output without another dependency. One logical stream
// is assumed (ffmpeg writes one); CRCs are not checked, the pipe is local.
type oggReader struct {
	r       *bufio.Reader
	hdr     [27]byte
	lacing  [255]byte
	pending []byte // a packet continued on the next page
}

// oggMaxPacket bounds a packet spread over pages, so a broken stream cannot
// grow memory without end. Opus packets are at most a few kB.
const oggMaxPacket = 1 << 16

func newOggReader(r io.Reader) *oggReader { return &oggReader{r: bufio.NewReaderSize(r, 8192)} }

// nextPage reads one page and calls fn for each packet that ends on it,
// with the page's granule position (the sample count at the end of the last
// packet ending on the page). pkt is only valid during the call.
func (o *oggReader) nextPage(fn func(pkt []byte, granule int64, last bool)) error {
	if _, err := io.ReadFull(o.r, o.hdr[:]); err != nil {
		return err
	}
	if string(o.hdr[:4]) != "OggS" || o.hdr[4] != 0 {
		return errors.New("ogg: bad page header")
	}
	granule := int64(binary.LittleEndian.Uint64(o.hdr[6:14]))
	n := int(o.hdr[26])
	if _, err := io.ReadFull(o.r, o.lacing[:n]); err != nil {
		return err
	}
	size := 0
	for _, l := range o.lacing[:n] {
		size += int(l)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(o.r, body); err != nil {
		return err
	}
	if o.hdr[5]&0x01 == 0 {
		o.pending = o.pending[:0] // not a continuation: drop a dangling packet
	}
	// Count the packets that end on this page, to tell fn which is last.
	ends := 0
	for _, l := range o.lacing[:n] {
		if l < 255 {
			ends++
		}
	}
	start, pos, seen := 0, 0, 0
	for _, l := range o.lacing[:n] {
		pos += int(l)
		if l == 255 {
			continue // the packet goes on in the next segment
		}
		seen++
		pkt := body[start:pos]
		if len(o.pending) > 0 {
			o.pending = append(o.pending, pkt...)
			pkt = o.pending
		}
		fn(pkt, granule, seen == ends)
		o.pending = o.pending[:0]
		start = pos
	}
	if start < pos { // the last packet goes on on the next page
		o.pending = append(o.pending, body[start:pos]...)
		if len(o.pending) > oggMaxPacket {
			return fmt.Errorf("ogg: packet over %d bytes", oggMaxPacket)
		}
	}
	return nil
}

// opusSamples is the number of 48 kHz samples in an Opus packet, from its
// TOC byte (RFC 6716 section 3.1); 0 when the packet is malformed.
func opusSamples(pkt []byte) int {
	if len(pkt) < 1 {
		return 0
	}
	toc := pkt[0]
	cfg := toc >> 3
	var frame int
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		frame = []int{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[cfg&3]
	}
	switch toc & 3 {
	case 0:
		return frame
	case 1, 2:
		return 2 * frame
	default:
		if len(pkt) < 2 {
			return 0
		}
		return int(pkt[1]&0x3f) * frame
	}
}
