package mediatest

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// SimulcastLayer is one layer a SimulcastPublisher sends: synthetic VP8
// frames of Packets packets of Size bytes each.
type SimulcastLayer struct {
	RID     string
	Packets int // per frame; default 1
	Size    int // payload bytes per packet; default 600, at most 1200
}

// SimulcastOptions configure a SimulcastPublisher.
type SimulcastOptions struct {
	Layers []SimulcastLayer // in the order the offer lists them
	FPS    int              // default 30
	GOP    int              // frames between periodic keyframes; default 60
	Audio  bool             // also send an Opus track (silent frames)
}

// SimulcastPublisher is a rid-based simulcast WHIP publisher like a browser:
// one video sender with one encoding per layer, each with its own SSRC,
// sequence numbers, timestamp base and VP8 picture ids, the mid and rid
// header extensions on every packet, sender reports from pion's
// interceptor, and a keyframe on the layer a PLI names.
//
// The frames are synthetic but frame-aligned VP8 (RFC 7741 descriptor with
// 15-bit picture id and TL0PICIDX): after the descriptor and a 10-byte VP8
// header each packet carries Mark: the layer index (1 byte) and the frame
// number (4 bytes, big endian), so a viewer can tell which layer and frame
// it got (ParseMark).
type SimulcastPublisher struct {
	PC *webrtc.PeerConnection

	opts   SimulcastOptions
	tracks []*webrtc.TrackLocalStaticRTP
	audio  *webrtc.TrackLocalStaticRTP
	keyReq []atomic.Bool
	plis   []atomic.Int64
	midID  uint8
	ridID  uint8
	stop   []atomic.Bool // StopLayer

	connected chan struct{}
	failed    chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// MarkOffset is where the layer index and frame number start in a
// SimulcastPublisher's payload.
const MarkOffset = 5 + 10

// ParseMark returns the layer index and frame number a SimulcastPublisher
// wrote into payload.
func ParseMark(payload []byte) (layer int, frame uint32, ok bool) {
	if len(payload) < MarkOffset+5 {
		return 0, 0, false
	}
	return int(payload[MarkOffset]), binary.BigEndian.Uint32(payload[MarkOffset+1:]), true
}

// NewSimulcastPublisher negotiates through signal and starts sending once
// connected.
func NewSimulcastPublisher(ctx context.Context, signal Signal, opts SimulcastOptions) (*SimulcastPublisher, error) {
	if len(opts.Layers) == 0 {
		return nil, errors.New("mediatest: no layers")
	}
	if opts.FPS <= 0 {
		opts.FPS = 30
	}
	if opts.GOP <= 0 {
		opts.GOP = 60
	}
	api, err := NewAPI()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &SimulcastPublisher{
		PC: pc, opts: opts,
		keyReq: make([]atomic.Bool, len(opts.Layers)), plis: make([]atomic.Int64, len(opts.Layers)),
		stop:      make([]atomic.Bool, len(opts.Layers)),
		connected: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{}),
	}
	fail := func(err error) (*SimulcastPublisher, error) {
		_ = p.Close()
		return nil, err
	}
	for _, l := range opts.Layers {
		t, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			"video", "mediatest", webrtc.WithRTPStreamID(l.RID))
		if err != nil {
			return fail(err)
		}
		p.tracks = append(p.tracks, t)
	}
	tr, err := pc.AddTransceiverFromTrack(p.tracks[0], webrtc.RTPTransceiverInit{
		Direction: webrtc.RTPTransceiverDirectionSendonly,
	})
	if err != nil {
		return fail(err)
	}
	sender := tr.Sender()
	for _, t := range p.tracks[1:] {
		if err := sender.AddEncoding(t); err != nil {
			return fail(err)
		}
	}
	var audioSender *webrtc.RTPSender
	if opts.Audio {
		p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		}, "audio", "mediatest")
		if err != nil {
			return fail(err)
		}
		atr, err := pc.AddTransceiverFromTrack(p.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(err)
		}
		audioSender = atr.Sender()
	}
	var once, failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(p.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(p.failed) })
		}
	})
	if err := negotiate(ctx, pc, signal); err != nil {
		return fail(err)
	}
	// The extension ids are final once negotiated.
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			p.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			p.ridID = uint8(e.ID)
		}
	}
	for i, l := range opts.Layers {
		p.wg.Go(func() { p.readRTCP(sender, l.RID, i) })
	}
	if audioSender != nil {
		p.wg.Go(p.playAudio)
		p.wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := audioSender.Read(buf); err != nil {
					return
				}
			}
		})
	}
	p.wg.Go(func() { p.play(tr.Mid()) })
	return p, nil
}

// WaitConnected blocks until the PeerConnection is connected.
func (p *SimulcastPublisher) WaitConnected(ctx context.Context) error {
	return waitConnected(ctx, p.connected, p.failed)
}

// PLIs is how many keyframe requests layer i received.
func (p *SimulcastPublisher) PLIs(i int) int64 { return p.plis[i].Load() }

// StopLayer stops (or restarts) sending layer i, as a browser does under
// CPU or bandwidth limits.
func (p *SimulcastPublisher) StopLayer(i int, stopped bool) { p.stop[i].Store(stopped) }

// Close stops sending and closes the PeerConnection.
func (p *SimulcastPublisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.done)
		err = p.PC.Close()
		p.wg.Wait()
	})
	return err
}

func (p *SimulcastPublisher) readRTCP(s *webrtc.RTPSender, rid string, i int) {
	for {
		pkts, _, err := s.ReadSimulcastRTCP(rid)
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.plis[i].Add(1)
				p.keyReq[i].Store(true)
			}
		}
	}
}

type layerState struct {
	seq   uint16
	ts    uint32
	pic   uint16
	tl0   uint8
	frame uint32
}

func (p *SimulcastPublisher) play(mid string) {
	select {
	case <-p.connected:
	case <-p.failed:
		return
	case <-p.done:
		return
	}
	states := make([]layerState, len(p.tracks))
	for i := range states {
		states[i] = layerState{seq: uint16(rand.Uint32()), ts: rand.Uint32(), pic: uint16(rand.Uint32()) & 0x7fff, tl0: uint8(rand.Uint32())}
	}
	tick := time.NewTicker(time.Second / time.Duration(p.opts.FPS))
	defer tick.Stop()
	buf := make([]byte, 1300)
	for n := 0; ; n++ {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		for i, l := range p.opts.Layers {
			st := &states[i]
			if p.stop[i].Load() {
				continue
			}
			key := n%p.opts.GOP == 0 || p.keyReq[i].Swap(false)
			pkts, size := max(l.Packets, 1), l.Size
			if size <= 0 {
				size = 600
			}
			size = min(max(size, MarkOffset+5), 1200)
			for j := range pkts {
				b := buf[:size]
				clear(b)
				b[0] = 0x80 // X
				if j == 0 {
					b[0] |= 0x10 // S, partition 0
				}
				b[1] = 0xc0 // I, L
				b[2] = 0x80 | byte(st.pic>>8)
				b[3] = byte(st.pic)
				b[4] = st.tl0
				if j == 0 {
					if key {
						// frame tag (P=0, show_frame), start code, 16x16
						copy(b[5:], []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 16, 0, 16, 0})
					} else {
						copy(b[5:], []byte{0x11, 0x02, 0x00})
					}
				}
				b[MarkOffset] = byte(i)
				binary.BigEndian.PutUint32(b[MarkOffset+1:], st.frame)
				pk := &rtp.Packet{Header: rtp.Header{
					Version: 2, PayloadType: 96, SequenceNumber: st.seq, Timestamp: st.ts, Marker: j == pkts-1,
				}, Payload: b}
				if p.midID != 0 {
					_ = pk.Header.SetExtension(p.midID, []byte(mid))
				}
				if p.ridID != 0 {
					_ = pk.Header.SetExtension(p.ridID, []byte(l.RID))
				}
				if err := p.tracks[i].WriteRTP(pk); err != nil && errors.Is(err, webrtc.ErrConnectionClosed) {
					return
				}
				st.seq++
			}
			st.ts += 90000 / uint32(p.opts.FPS)
			st.pic = (st.pic + 1) & 0x7fff
			st.tl0++
			st.frame++
		}
	}
}

// playAudio sends a 20 ms Opus silence frame every 20 ms.
func (p *SimulcastPublisher) playAudio() {
	select {
	case <-p.connected:
	case <-p.failed:
		return
	case <-p.done:
		return
	}
	seq, ts := uint16(rand.Uint32()), rand.Uint32()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		_ = p.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{
			Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts,
		}, Payload: []byte{0xf8, 0xff, 0xfe}})
		seq++
		ts += 960
	}
}
