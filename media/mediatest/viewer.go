package mediatest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// ViewerOptions configure a Viewer. The zero value receives video and audio
// with NewAPI().
type ViewerOptions struct {
	API       *webrtc.API
	NoVideo   bool
	NoAudio   bool
	VideoOnly []webrtc.RTPCodecParameters // restrict the video codecs offered (e.g. VP8 only)
}

// StreamStats describe one received RTP stream.
type StreamStats struct {
	Packets     int
	Bytes       int
	MaxPayload  int
	FirstAt     time.Time
	LastAt      time.Time
	SSRC        uint32 // the last one seen
	SSRCChanges int
	PayloadType uint8 // the last one seen
	PTChanges   int
	// SeqJumps counts discontinuities: a sequence number more than 100 away
	// from the previous one, either way (a reset, a new publisher's numbering).
	SeqJumps int
	Lost     int // sum of small forward gaps (recovered retransmissions not subtracted)
	// Reordered counts late packets (older than the newest seen), which
	// includes retransmissions.
	Reordered   int
	TSBackwards int // in-order packets whose timestamp went backwards
	// LastTS is the timestamp of the newest in-order packet (at LastAt).
	LastTS uint32
	// SenderReports counts the RTCP sender reports received for the
	// stream; SRNTP and SRRTP are the last one's mapping.
	SenderReports int
	SRNTP         time.Time
	SRRTP         uint32
}

// ViewerStats is a snapshot of what a Viewer received.
type ViewerStats struct {
	Start         time.Time // when the viewer was created
	FirstPacketAt time.Time // first RTP packet of any kind
	Video         StreamStats
	Audio         StreamStats
	// FirstVideoKeyframe: the first video packet started a keyframe (an SPS
	// or the start of an IDR).
	FirstVideoKeyframe bool
	// FirstKeyframeAt is when the first complete keyframe (IDR or VP8 key
	// frame, from its first packet to the marker, no gap) arrived;
	// FirstKeyframeParams tells whether SPS and PPS came with it (always
	// true for VP8, which has none).
	FirstKeyframeAt     time.Time
	FirstKeyframeParams bool
	Keyframes           int
	LastKeyframeAt      time.Time
}

// Viewer receives a stream like a WHEP player and records what it gets.
type Viewer struct {
	PC *webrtc.PeerConnection

	connected chan struct{}
	failed    chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	stats ViewerStats
	video videoState
	seq   [2]seqState
}

type seqState struct {
	have    bool
	lastSeq uint16
	lastTS  uint32
}

// videoState assembles frames just enough to tell whether a keyframe arrived
// complete.
type videoState struct {
	active     bool
	ts         uint32
	nextSeq    uint16
	clean      bool // the frame's first packet followed a marker (or was the first packet)
	gap        bool
	types      uint32 // bit per NAL unit type seen in the frame
	prevMarker bool
	seen       bool
}

// NewViewer negotiates through signal and starts recording.
func NewViewer(ctx context.Context, signal Signal, opts ViewerOptions) (*Viewer, error) {
	api := opts.API
	if api == nil {
		var err error
		if api, err = NewAPI(); err != nil {
			return nil, err
		}
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{PC: pc, connected: make(chan struct{}), failed: make(chan struct{})}
	v.stats.Start = time.Now()
	fail := func(err error) (*Viewer, error) {
		_ = v.Close()
		return nil, err
	}
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !opts.NoVideo {
		tr, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv)
		if err != nil {
			return fail(err)
		}
		if len(opts.VideoOnly) > 0 {
			if err := tr.SetCodecPreferences(opts.VideoOnly); err != nil {
				return fail(err)
			}
		}
	}
	if !opts.NoAudio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			return fail(err)
		}
	}
	var once, failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(v.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(v.failed) })
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		// OnTrack runs on pion's goroutine; reading there keeps ownership
		// with the PeerConnection, which Close waits for.
		isVideo := t.Kind() == webrtc.RTPCodecTypeVideo
		// The SFU may switch codecs (and payload types) on the same SSRC
		// when the host changes; decide per packet.
		vp8PT := map[uint8]bool{}
		for _, c := range r.GetParameters().Codecs {
			vp8PT[uint8(c.PayloadType)] = strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8)
		}
		go v.readRTCP(isVideo, r)
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			v.record(isVideo, vp8PT[p.PayloadType], p, time.Now())
		}
	})
	if err := negotiate(ctx, pc, signal); err != nil {
		return fail(err)
	}
	return v, nil
}

// WaitConnected blocks until the PeerConnection is connected.
func (v *Viewer) WaitConnected(ctx context.Context) error {
	return waitConnected(ctx, v.connected, v.failed)
}

// Stats returns a snapshot.
func (v *Viewer) Stats() ViewerStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

// WaitFor polls until cond holds for the stats or ctx ends; it returns the
// last snapshot either way.
func (v *Viewer) WaitFor(ctx context.Context, cond func(ViewerStats) bool) (ViewerStats, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st := v.Stats()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return v.Stats(), ctx.Err()
		case <-tick.C:
		}
	}
}

// Ended is closed once the connection failed or was closed (by either side).
func (v *Viewer) Ended() <-chan struct{} { return v.failed }

// Close closes the PeerConnection; pion waits for the track readers, which
// run in its OnTrack goroutines.
func (v *Viewer) Close() error {
	var err error
	v.closeOnce.Do(func() { err = v.PC.GracefulClose() })
	return err
}

// readRTCP records the sender reports of one stream until the receiver
// stops.
func (v *Viewer) readRTCP(isVideo bool, r *webrtc.RTPReceiver) {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			sr, ok := p.(*rtcp.SenderReport)
			if !ok {
				continue
			}
			v.mu.Lock()
			s := &v.stats.Audio
			if isVideo {
				s = &v.stats.Video
			}
			s.SenderReports++
			s.SRNTP, s.SRRTP = ntpTime(sr.NTPTime), sr.RTPTime
			v.mu.Unlock()
		}
	}
}

// ntpTime converts a 64-bit NTP timestamp.
func ntpTime(ntp uint64) time.Time {
	const ntpEpochOffset = 2208988800
	return time.Unix(int64(ntp>>32)-ntpEpochOffset, int64((ntp&0xffffffff)*1e9>>32))
}

func (v *Viewer) record(isVideo, vp8 bool, p *rtp.Packet, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, q := &v.stats.Audio, &v.seq[1]
	if isVideo {
		s, q = &v.stats.Video, &v.seq[0]
	}
	if s.Packets == 0 {
		s.FirstAt = now
	}
	if v.stats.FirstPacketAt.IsZero() {
		v.stats.FirstPacketAt = now
	}
	s.Packets++
	s.Bytes += len(p.Payload)
	s.LastAt = now
	s.MaxPayload = max(s.MaxPayload, len(p.Payload))
	if s.SSRC != 0 && s.SSRC != p.SSRC {
		s.SSRCChanges++
	}
	s.SSRC = p.SSRC
	if s.Packets > 1 && s.PayloadType != p.PayloadType {
		s.PTChanges++
	}
	s.PayloadType = p.PayloadType
	inOrder := true
	if q.have {
		d := int16(p.SequenceNumber - q.lastSeq)
		switch {
		case d > 100 || d < -100:
			s.SeqJumps++
		case d <= 0:
			s.Reordered++
			inOrder = false
		case d > 1:
			s.Lost += int(d) - 1
		}
		if inOrder && int32(p.Timestamp-q.lastTS) < 0 {
			s.TSBackwards++
		}
	}
	if inOrder {
		q.have, q.lastSeq, q.lastTS = true, p.SequenceNumber, p.Timestamp
		s.LastTS = p.Timestamp
	}
	if isVideo && inOrder {
		v.recordVideo(vp8, p, now)
	}
}

const (
	nalIDR = 5
	nalSPS = 7
	nalPPS = 8
)

func (v *Viewer) recordVideo(vp8 bool, p *rtp.Packet, now time.Time) {
	st, f := &v.stats, &v.video
	types, keyStart := nalTypes(p.Payload)
	if vp8 {
		// VP8 has no parameter sets: a keyframe is complete on its own, so
		// report it as an IDR that came with its "parameters".
		types, keyStart = 0, vp8KeyframeStart(p.Payload)
		if keyStart {
			types = 1<<nalIDR | 1<<nalSPS | 1<<nalPPS
		}
	}
	if !f.seen {
		f.seen = true
		st.FirstVideoKeyframe = keyStart
		f.prevMarker = true
	}
	if !f.active || p.Timestamp != f.ts {
		*f = videoState{active: true, ts: p.Timestamp, clean: f.prevMarker, seen: true}
	} else if p.SequenceNumber != f.nextSeq {
		f.gap = true
	}
	f.nextSeq = p.SequenceNumber + 1
	f.types |= types
	f.prevMarker = p.Marker
	if !p.Marker {
		return
	}
	if f.types&(1<<nalIDR) != 0 && f.clean && !f.gap {
		st.Keyframes++
		st.LastKeyframeAt = now
		if st.FirstKeyframeAt.IsZero() {
			st.FirstKeyframeAt = now
			st.FirstKeyframeParams = f.types&(1<<nalSPS) != 0 && f.types&(1<<nalPPS) != 0
		}
	}
	f.active = false
}

// vp8KeyframeStart: first packet of a VP8 keyframe (RFC 7741: S=1, PID=0,
// P bit of the payload header clear).
func vp8KeyframeStart(b []byte) bool {
	if len(b) == 0 || b[0]&0x10 == 0 || b[0]&0x07 != 0 {
		return false
	}
	i := 1
	if b[0]&0x80 != 0 {
		if len(b) < 2 {
			return false
		}
		x := b[1]
		i = 2
		if x&0x80 != 0 {
			if i >= len(b) {
				return false
			}
			if b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 {
			i++
		}
		if x&0x30 != 0 {
			i++
		}
	}
	return i < len(b) && b[i]&1 == 0
}

// nalTypes returns a bit set of the H264 NAL unit types in an RTP payload
// (single NAL, STAP-A, or the start of an FU-A) and whether the packet starts
// a keyframe (SPS or IDR start).
func nalTypes(b []byte) (types uint32, keyStart bool) {
	if len(b) == 0 {
		return 0, false
	}
	switch t := b[0] & 0x1f; {
	case t >= 1 && t <= 23:
		types = 1 << t
	case t == 24:
		for i := 1; i+2 < len(b); {
			n := int(b[i])<<8 | int(b[i+1])
			i += 2
			if n == 0 || i+n > len(b) {
				break
			}
			types |= 1 << (b[i] & 0x1f)
			i += n
		}
	case t == 28:
		if len(b) > 1 && b[1]&0x80 != 0 {
			types = 1 << (b[1] & 0x1f)
		}
	}
	return types, types&(1<<nalIDR|1<<nalSPS) != 0
}
