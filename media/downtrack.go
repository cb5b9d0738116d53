package media

import (
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// downTrack is a viewer's outgoing track. Unlike pion's TrackLocalStaticRTP
// it binds to every negotiated codec of its kind and picks the payload type
// per packet from the codec the current publisher sends, so a viewer that
// subscribed before the host chose H264 or VP8 (or who stays across a host
// that switches) keeps working.
type downTrack struct {
	id, streamID string
	kind         webrtc.RTPCodecType
	table        codecTable
	b            atomic.Pointer[binding]
	hdr          rtp.Header // reused by the owning viewer's writer goroutine only
	ext          [2]byte    // hdr's transport-wide sequence number
	extID        uint8      // the extension id hdr carries (d.ext), 0 = none
}

// binding is immutable once published.
type binding struct {
	ctxID  string
	ssrc   uint32
	twccID uint8 // negotiated transport-wide-cc extension id; 0 = none (bwe.go)
	w      webrtc.TrackLocalWriter
	pt     [maxCodecs]int16 // codecTable index -> payload type; -1 = not negotiated
}

var _ webrtc.TrackLocal = (*downTrack)(nil)

func newDownTrack(k webrtc.RTPCodecType, table codecTable, streamID string) *downTrack {
	return &downTrack{id: k.String(), streamID: streamID, kind: k, table: table}
}

// Bind implements webrtc.TrackLocal.
func (d *downTrack) Bind(tc webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	b := &binding{ctxID: tc.ID(), ssrc: uint32(tc.SSRC()), w: tc.WriteStream()}
	for _, e := range tc.HeaderExtensions() {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
			b.twccID = uint8(e.ID)
		}
	}
	var first webrtc.RTPCodecParameters
	found := false
	for i := range b.pt {
		b.pt[i] = -1
		if i >= len(d.table) || d.table[i].kind != d.kind {
			continue
		}
		c, ok := d.table.pick(i, tc.CodecParameters())
		if !ok {
			continue
		}
		b.pt[i] = int16(c.PayloadType)
		if !found {
			first, found = c, true
		}
	}
	if !found {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	d.b.Store(b)
	return first, nil
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(tc webrtc.TrackLocalContext) error {
	if b := d.b.Load(); b != nil && b.ctxID == tc.ID() {
		d.b.Store(nil)
	}
	return nil
}

func (d *downTrack) ID() string                { return d.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.streamID }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.kind }

// canSend reports whether the viewer negotiated a codec of the family the
// packet carries.
func (d *downTrack) canSend(pk *packet) bool {
	b := d.b.Load()
	return b != nil && b.pt[pk.codec] >= 0
}

// twccID is the transport-wide-cc extension id negotiated, 0 = none.
func (d *downTrack) twccID() uint8 {
	if b := d.b.Load(); b != nil {
		return b.twccID
	}
	return 0
}

// outHdr is what the viewer's writer decided for one packet: its
// numbering (rewritten per viewer across layer switches), its payload (a
// per-viewer copy when a VP8 picture id had to be rewritten) and its
// transport-wide sequence number.
type outHdr struct {
	seq     uint16
	ts      uint32
	payload []byte
	tseq    uint16
	twcc    bool
}

// send writes pk with this viewer's SSRC and payload type. The publisher's
// header extensions are not forwarded (their IDs were negotiated with the
// publisher, not with this viewer); the only one sent is our own
// transport-wide sequence number.
// tseq is the viewer's transport-wide counter (one for both kinds: the
// viewer's writer sends both); it is used and advanced when the viewer
// negotiated the extension.
func (d *downTrack) send(pk *packet, o *outHdr, tseq *uint16) (int, error) {
	b := d.b.Load()
	if b == nil || b.pt[pk.codec] < 0 {
		return 0, nil
	}
	h := d.header(b, o, tseq)
	h.Padding, h.PaddingSize = false, 0
	h.Marker = pk.marker
	h.PayloadType = uint8(b.pt[pk.codec])
	return b.w.WriteRTP(h, o.payload)
}

// paddingSize is a padding-only packet's payload: all padding, the most
// one byte of padding length can say.
const paddingSize = 255

// sendPadding writes a padding-only packet (RTP padding bit, no payload
// but paddingSize bytes of padding) numbered by o, with the payload type of
// codec: a bandwidth probe's (probe_pad.go). Receivers count it in the
// sequence and in their transport-wide feedback and otherwise drop it.
func (d *downTrack) sendPadding(codec uint8, o *outHdr, tseq *uint16) (int, error) {
	b := d.b.Load()
	if b == nil || b.pt[codec] < 0 {
		return 0, nil
	}
	h := d.header(b, o, tseq)
	h.Padding, h.PaddingSize = true, paddingSize
	h.Marker = false
	h.PayloadType = uint8(b.pt[codec])
	return b.w.WriteRTP(h, nil)
}

// header fills d.hdr for o: numbering, SSRC and (when negotiated) the next
// transport-wide sequence number.
func (d *downTrack) header(b *binding, o *outHdr, tseq *uint16) *rtp.Header {
	h := &d.hdr
	h.Version = 2
	if b.twccID != 0 {
		o.tseq, o.twcc = *tseq, true
		*tseq++
		d.ext = [2]byte{byte(o.tseq >> 8), byte(o.tseq)}
		if d.extID != b.twccID {
			// Once: the header keeps pointing at d.ext, rewritten per packet.
			h.Extension = false
			h.Extensions = h.Extensions[:0]
			_ = h.SetExtension(b.twccID, d.ext[:]) // id 1..14, 2 bytes: cannot fail
			d.extID = b.twccID
		}
	} else if d.extID != 0 {
		h.Extension = false
		h.Extensions = h.Extensions[:0]
		d.extID = 0
	}
	h.CSRC = h.CSRC[:0]
	h.SequenceNumber = o.seq
	h.Timestamp = o.ts
	h.SSRC = b.ssrc
	return h
}
