package media

import (
	"errors"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// RTSP readers of a room that is not published over RTSP (WHIP, or an RTSP
// source whose stream could not be set up) get a read stream fed from a tap
// on the room's forwarders: the packets viewers get, after rewrite, with
// fixed payload types. The SDP describes the room's codecs at the time of
// the first DESCRIBE or SETUP. The tap is added when the first reader sets
// up and removed, with the stream, when the last one leaves, when the room
// goes offline, or when the publisher's codec changes (readers then
// reconnect and get a new description).

// rtspTap is the tap side of a read stream.
type rtspTap struct {
	rs      *RTSPServer
	r       *room
	rd      *rtspReadStream
	t       *tap
	codecs  [numKinds]int // codecTable index described per kind; -1 = none
	medias  [numKinds]*description.Media
	pts     [numKinds]uint8
	started bool       // the tap is on the room; guarded by rs.mu
	out     rtp.Packet // the run goroutine's only
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
	ts := &rtspTap{rs: rs, r: r, t: newTap(), codecs: codecs}
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
		if !ts.r.addTap(ts.t) {
			return false
		}
		if !rs.s.spawn(func() { ts.t.run(rs.s.stop, ts.deliver, ts.end) }) {
			ts.r.removeTap(ts.t)
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

// play: a reader starts playing; video restarts at a keyframe.
func (ts *rtspTap) play() {
	ts.t.resync()
	ts.r.video.requestKeyframe()
}

// stop takes the tap off the room and ends its goroutine.
func (ts *rtspTap) stop() {
	ts.r.removeTap(ts.t)
	ts.t.close()
}

// end runs on the tap's goroutine when the room went offline or the codec
// changed: readers are disconnected.
func (ts *rtspTap) end() { ts.rs.dropStream(ts.r.id, ts.rd) }

// deliver writes one packet to the readers; false if the stream no longer
// describes what the room sends.
func (ts *rtspTap) deliver(pk *packet) bool {
	k := pk.kind
	m := ts.medias[k]
	if m == nil {
		return true // a kind that came after the description: readers do without
	}
	if int(pk.codec) != ts.codecs[k] {
		ts.rs.log.Info("rtsp readers disconnected: the publisher's codec changed", "room", ts.r.id, "kind", k)
		return false
	}
	ts.out.Header = rtp.Header{Version: 2, Marker: pk.marker, PayloadType: ts.pts[k], SequenceNumber: pk.seq, Timestamp: pk.ts}
	ts.out.Payload = pk.payload()
	ts.rd.write(m, &ts.out)
	return true
}
