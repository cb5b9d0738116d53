package mediatest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// PublisherOptions configure a Publisher. The zero value plays the committed
// H264 and Opus clips with NewAPI().
type PublisherOptions struct {
	Clip *Clip // nil = LoadClip("")
	API  *webrtc.API
	// VideoCodec is webrtc.MimeTypeH264 (default) or webrtc.MimeTypeVP8.
	VideoCodec string
	FPS        int // default 30
}

// Publisher plays a clip in a loop at real-time pace over a PeerConnection,
// like a WHIP encoder. On PLI/FIR it jumps to the next IDR of the clip, as a
// real encoder would produce a keyframe.
type Publisher struct {
	PC *webrtc.PeerConnection

	clip      *Clip
	frames    []Frame // the clip's video in the chosen codec
	fps       int
	video     *webrtc.TrackLocalStaticSample
	audio     *webrtc.TrackLocalStaticSample
	keyReq    atomic.Bool
	plis      atomic.Int64
	sent      atomic.Int64
	stalled   atomic.Bool
	connected chan struct{}
	failed    chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewPublisher negotiates through signal and starts playing once connected.
func NewPublisher(ctx context.Context, signal Signal, opts PublisherOptions) (*Publisher, error) {
	clip := opts.Clip
	if clip == nil {
		var err error
		if clip, err = LoadClip(""); err != nil {
			return nil, err
		}
	}
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
	p := &Publisher{
		PC: pc, clip: clip, fps: opts.FPS,
		connected: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{}),
	}
	if p.fps <= 0 {
		p.fps = 30
	}
	fail := func(err error) (*Publisher, error) {
		_ = p.Close()
		return nil, err
	}
	videoCap := webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
	p.frames = clip.H264
	switch opts.VideoCodec {
	case "", webrtc.MimeTypeH264:
	case webrtc.MimeTypeVP8:
		videoCap = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		p.frames = clip.VP8
	default:
		return fail(fmt.Errorf("mediatest: unsupported video codec %q", opts.VideoCodec))
	}
	p.video, err = webrtc.NewTrackLocalStaticSample(videoCap, "video", "mediatest")
	if err != nil {
		return fail(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
	}, "audio", "mediatest")
	if err != nil {
		return fail(err)
	}
	var senders []*webrtc.RTPSender
	for _, t := range []*webrtc.TrackLocalStaticSample{p.video, p.audio} {
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(err)
		}
		senders = append(senders, tr.Sender())
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
	for _, s := range senders {
		p.wg.Go(func() { p.readRTCP(s) })
	}
	if err := negotiate(ctx, pc, signal); err != nil {
		return fail(err)
	}
	p.wg.Go(p.playVideo)
	p.wg.Go(p.playAudio)
	return p, nil
}

// WaitConnected blocks until the PeerConnection is connected.
func (p *Publisher) WaitConnected(ctx context.Context) error {
	return waitConnected(ctx, p.connected, p.failed)
}

// PLIs is the number of keyframe requests (PLI or FIR) received.
func (p *Publisher) PLIs() int64 { return p.plis.Load() }

// Frames is the number of video frames sent.
func (p *Publisher) Frames() int64 { return p.sent.Load() }

// Stall stops sending media and keeps the connection: a host whose uplink
// died (ICE keepalives aside) before its session timed out.
func (p *Publisher) Stall() { p.stalled.Store(true) }

// Close stops playing and closes the PeerConnection.
func (p *Publisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.done)
		err = p.PC.GracefulClose()
		p.wg.Wait()
	})
	return err
}

// startPlaying waits for the connection, so the stream starts at an IDR as
// an encoder's would.
func (p *Publisher) startPlaying() bool {
	select {
	case <-p.connected:
		return true
	case <-p.done:
		return false
	}
}

func (p *Publisher) playVideo() {
	if !p.startPlaying() {
		return
	}
	dur := time.Second / time.Duration(p.fps)
	tick := time.NewTicker(dur)
	defer tick.Stop()
	i := 0
	for {
		if p.keyReq.Swap(false) {
			i = nextKeyframe(p.frames, i)
		}
		f := p.frames[i]
		if !p.stalled.Load() {
			if err := p.video.WriteSample(media.Sample{Data: f.Data, Duration: dur}); err != nil {
				return
			}
			p.sent.Add(1)
		}
		i = (i + 1) % len(p.frames)
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

func (p *Publisher) playAudio() {
	if !p.startPlaying() {
		return
	}
	i := 0
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-timer.C:
		}
		pkt := p.clip.Opus[i]
		if !p.stalled.Load() {
			if err := p.audio.WriteSample(media.Sample{Data: pkt.Data, Duration: pkt.Duration}); err != nil {
				return
			}
		}
		i = (i + 1) % len(p.clip.Opus)
		next = next.Add(pkt.Duration)
		timer.Reset(time.Until(next))
	}
}

func (p *Publisher) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.plis.Add(1)
				p.keyReq.Store(true)
			}
		}
	}
}

// String describes the publisher for test logs.
func (p *Publisher) String() string {
	return fmt.Sprintf("publisher(frames=%d plis=%d)", p.Frames(), p.PLIs())
}
