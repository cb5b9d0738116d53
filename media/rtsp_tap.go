package media

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpvp8"
	"github.com/pion/rtp"
)

// RTSP readers of a room that is not published over RTSP (WHIP, an edge
// pull, or an RTSP source whose stream could not be set up) get a read
// stream fed by one Reader of the room's media seam (stream.go): access
// units on the room clock, re-packetized once per room with gortsplib's
// encoders, with the room clock as the NTP time of RTSP sender reports. The
// SDP describes the room's codecs at the time of the first DESCRIBE or
// SETUP. The reader is opened when the first RTSP reader sets up and closed,
// with the stream, when the last one leaves, when the room goes offline, or
// when the publisher's codec changes (readers then reconnect and get a new
// description).

// rtspPlaySettle is how long after the first PLAY the units start flowing.
// gortsplib activates a session only after OnPlay returns and has no hook
// for "now playing"; what is written before is lost for it, and the first
// units are the GOP cache's keyframe.
const rtspPlaySettle = 50 * time.Millisecond

// rtspTap is the seam side of a read stream.
type rtspTap struct {
	rs      *RTSPServer
	r       *room
	rd      *rtspReadStream
	reader  *Reader       // set by join
	codecs  [numKinds]int // codecTable index described per kind; -1 = none
	medias  [numKinds]*description.Media
	pts     [numKinds]uint8
	started bool // the reader is open; guarded by rs.mu

	ctx      context.Context // ends the run goroutine
	cancel   context.CancelFunc
	played   chan struct{} // closed at the first PLAY
	playOnce sync.Once

	// the run goroutine's only
	h264 *rtph264.Encoder
	vp8  *rtpvp8.Encoder
	seq  [numKinds]uint16
	out  rtp.Packet
}

// tapFormat is how a codec is offered to RTSP readers.
func tapFormat(spec codecSpec) format.Format {
	switch spec.fam {
	case famH264:
		// No sprop-parameter-sets: WebRTC publishers send SPS and PPS in
		// band, and the tap starts readers at a keyframe.
		return &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	case famVP8:
		return &format.VP8{PayloadTyp: 97}
	case famOpus:
		return &format.Opus{PayloadTyp: 111, ChannelCount: 2}
	case famPCMU:
		return &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}
	case famPCMA:
		return &format.G711{PayloadTyp: 8, MULaw: false, SampleRate: 8000, ChannelCount: 1}
	}
	return nil
}

func (rs *RTSPServer) newTapStream(r *room, codecs [numKinds]int) (*rtspReadStream, error) {
	ts := &rtspTap{rs: rs, r: r, codecs: codecs, played: make(chan struct{})}
	ts.ctx, ts.cancel = context.WithCancel(context.Background())
	desc := &description.Session{}
	for k, c := range codecs {
		if c < 0 {
			continue
		}
		f := tapFormat(rs.s.codecs[c])
		if f == nil {
			ts.codecs[k] = -1
			continue
		}
		typ := description.MediaTypeAudio
		if kind(k) == kindVideo {
			typ = description.MediaTypeVideo
		}
		m := &description.Media{Type: typ, Formats: []format.Format{f}}
		desc.Medias = append(desc.Medias, m)
		ts.medias[k], ts.pts[k] = m, f.PayloadType()
		if err := ts.encoder(f); err != nil {
			return nil, err
		}
	}
	if len(desc.Medias) == 0 {
		return nil, errors.New("no track to offer")
	}
	stream := &gortsplib.ServerStream{Server: rs.srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		return nil, err
	}
	rd := &rtspReadStream{stream: stream, tap: ts}
	ts.rd = rd
	return rd, nil
}

// readStream returns what readers of roomID get: the RTSP source's stream,
// or a tap-fed stream of the live room (made now if there is none, or if
// the one there no longer matches the room). nil if the room is not live.
func (rs *RTSPServer) readStream(roomID string) *rtspReadStream {
	cur := rs.stream(roomID)
	if cur != nil && cur.tap == nil {
		return cur
	}
	var codecs [numKinds]int
	r, live := rs.s.lookup(roomID)
	if live {
		codecs, live = r.currentCodecs()
	}
	if !live {
		if cur != nil { // described, never or no longer played
			rs.dropStream(roomID, cur)
		}
		return nil
	}
	if cur != nil && cur.tap.r == r && cur.tap.codecs == codecs {
		return cur
	}
	rd, err := rs.newTapStream(r, codecs)
	if err != nil {
		rs.log.Warn("rtsp read stream", "room", roomID, "err", err)
		return nil
	}
	rs.mu.Lock()
	now := rs.streams[roomID]
	if now != cur { // someone else replaced it meanwhile: use theirs
		rs.mu.Unlock()
		rd.close()
		return now
	}
	rs.streams[roomID] = rd
	rs.mu.Unlock()
	if cur != nil {
		cur.close()
	}
	return rd
}

// join counts a reader session that set up rd; the first reader of a
// tap-fed stream puts its tap on the room. false if rd is no longer the
// room's stream or the room went offline.
func (rs *RTSPServer) join(roomID string, rd *rtspReadStream) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.streams[roomID] != rd {
		return false
	}
	ts := rd.tap
	if ts != nil && !ts.started {
		reader, err := ts.r.openReader(ReaderOptions{})
		if err != nil {
			return false
		}
		ts.reader = reader
		if !rs.s.spawn(ts.run) {
			reader.Close()
			return false
		}
		ts.started = true
	}
	rd.readers.Add(1)
	return true
}

// leave uncounts a reader; a tap-fed stream ends with its last reader.
func (rs *RTSPServer) leave(roomID string, rd *rtspReadStream) {
	rs.mu.Lock()
	last := rd.readers.Add(-1) == 0 && rd.tap != nil
	if last && rs.streams[roomID] == rd {
		delete(rs.streams, roomID)
	}
	rs.mu.Unlock()
	if last {
		rd.close()
	}
}

// encoder prepares the packetizer for f's codec.
func (ts *rtspTap) encoder(f format.Format) error {
	var err error
	switch f := f.(type) {
	case *format.H264:
		if ts.h264, err = f.CreateEncoder(); err == nil {
			ts.h264.PayloadMaxSize = rtspMaxPayload
		}
	case *format.VP8:
		if ts.vp8, err = f.CreateEncoder(); err == nil {
			ts.vp8.PayloadMaxSize = rtspMaxPayload
		}
	}
	return err
}

// play: a reader starts playing. The first one starts the flow (from the
// GOP cache if the room's stream has one); later ones join the running
// stream and get a keyframe requested for them.
func (ts *rtspTap) play() {
	first := false
	ts.playOnce.Do(func() { first = true; close(ts.played) })
	if !first {
		ts.r.video.requestKeyframe()
	}
}

// stop closes the reader and ends the run goroutine.
func (ts *rtspTap) stop() {
	ts.cancel()
	ts.rs.mu.Lock()
	reader := ts.reader
	ts.rs.mu.Unlock()
	if reader != nil {
		reader.Close()
	}
}

// end runs on the tap's goroutine when the room went offline or the codec
// changed: readers are disconnected.
func (ts *rtspTap) end() { ts.rs.dropStream(ts.r.id, ts.rd) }

// run delivers access units from the first PLAY until the stream ends.
func (ts *rtspTap) run() {
	select {
	case <-ts.played:
	case <-ts.ctx.Done():
		return
	}
	settle := time.NewTimer(rtspPlaySettle)
	defer settle.Stop()
	select {
	case <-settle.C:
	case <-ts.ctx.Done():
		return
	}
	for {
		au, err := ts.reader.Read(ts.ctx)
		if errors.Is(err, ErrNewSource) {
			continue // the host's next source goes on to the same readers (its codec is checked per unit)
		}
		if err != nil {
			if ts.ctx.Err() == nil {
				ts.end() // offline or room closed
			}
			return
		}
		if !ts.deliver(au) {
			ts.end()
			return
		}
	}
}

// deliver writes one access unit to the readers; false if the stream no
// longer describes what the room sends.
func (ts *rtspTap) deliver(au *AccessUnit) bool {
	k := kindAudio
	if au.Video {
		k = kindVideo
	}
	m := ts.medias[k]
	if m == nil {
		return true // a kind that came after the description: readers do without
	}
	if int(au.codec) != ts.codecs[k] {
		ts.rs.log.Info("rtsp readers disconnected: the publisher's codec changed", "room", ts.r.id, "kind", k)
		return false
	}
	rate := int64(ts.rs.s.codecs[au.codec].params.ClockRate)
	rtpTS := uint32(int64(au.PTS) * rate / int64(time.Second))
	ntp := ts.r.clk.wall(au.PTS)
	var pkts []*rtp.Packet
	var err error
	switch {
	case au.Video && ts.h264 != nil && au.NALUs != nil:
		pkts, err = ts.h264.Encode(au.NALUs)
	case au.Video && ts.vp8 != nil && au.Frame != nil:
		pkts, err = ts.vp8.Encode(au.Frame)
	case !au.Video:
		ts.seq[k]++
		ts.out.Header = rtp.Header{Version: 2, Marker: true, PayloadType: ts.pts[k], SequenceNumber: ts.seq[k]}
		ts.out.Payload = au.Frame
		pkts = []*rtp.Packet{&ts.out}
	}
	if err != nil {
		return true // an oversized unit: skip it
	}
	for _, p := range pkts {
		p.Timestamp = rtpTS
		_ = ts.rd.stream.WritePacketRTPWithNTP(m, p, ntp) // fails only once closed
	}
	return true
}
