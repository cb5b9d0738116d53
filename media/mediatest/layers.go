package mediatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Layer is one pre-encoded simulcast layer: H264 access units (Annex-B,
// SPS/PPS before every IDR, no B-frames), frame-aligned with the other
// layers of the same set (frame i of every layer shows the same picture and
// the IDRs are at the same indexes).
type Layer struct {
	RID    string // "f", "h", "q": full, half, quarter (OBS and browsers use these)
	Width  int
	Height int
	Kbps   int
	Frames []Frame
}

// LayerSpec is what EncodeLayers makes.
var LayerSpec = []Layer{
	{RID: "f", Width: 1280, Height: 720, Kbps: 2000},
	{RID: "h", Width: 640, Height: 360, Kbps: 500},
	{RID: "q", Width: 320, Height: 180, Kbps: 150},
}

// Layer encoding parameters: 10 s of ffmpeg's testsrc2 at 30 fps, a
// keyframe every 2 s (the GOP the fast-start measures assume).
const (
	LayerFPS     = 30
	LayerGOP     = 60 // frames
	layerSeconds = 10
	layerVersion = "v1" // bump when the encoding changes: the cache is keyed by it
)

// EncodeLayers encodes LayerSpec with ffmpeg once per machine (cached in
// the temporary directory, keyed by layerVersion) and loads them.
func EncodeLayers(ctx context.Context) ([]Layer, error) {
	dir := filepath.Join(os.TempDir(), "liveroom-layers-"+layerVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	layers := make([]Layer, len(LayerSpec))
	for i, l := range LayerSpec {
		name := filepath.Join(dir, fmt.Sprintf("%s-%dx%d-%dk.h264", l.RID, l.Width, l.Height, l.Kbps))
		if _, err := os.Stat(name); err != nil {
			if err := encodeLayer(ctx, l, name); err != nil {
				return nil, err
			}
		}
		frames, err := loadH264(name)
		if err != nil {
			return nil, err
		}
		l.Frames = frames
		layers[i] = l
	}
	n := len(layers[0].Frames)
	for _, l := range layers {
		if len(l.Frames) != n {
			return nil, fmt.Errorf("mediatest: layers not frame-aligned: %s has %d frames, %s %d", l.RID, len(l.Frames), layers[0].RID, n)
		}
		for j := range l.Frames {
			if l.Frames[j].IDR != layers[0].Frames[j].IDR {
				return nil, fmt.Errorf("mediatest: layer %s: keyframe %d not aligned", l.RID, j)
			}
		}
	}
	return layers, nil
}

// encodeLayer writes one layer to name through a temporary file (a crash
// mid-encode leaves no half file in the cache).
func encodeLayer(ctx context.Context, l Layer, name string) error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("mediatest: encoding layers needs ffmpeg: %w", err)
	}
	tmp := name + ".tmp"
	br := strconv.Itoa(l.Kbps) + "k"
	g := strconv.Itoa(LayerGOP)
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=1280x720:rate=%d:duration=%d", LayerFPS, layerSeconds),
		"-vf", fmt.Sprintf("scale=%d:%d", l.Width, l.Height),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-bf", "0", "-g", g, "-keyint_min", g, "-sc_threshold", "0",
		"-x264-params", "sliced-threads=0:repeat-headers=1",
		"-b:v", br, "-maxrate", br, "-bufsize", br,
		"-bsf:v", "h264_metadata=aud=insert", "-f", "h264", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mediatest: ffmpeg %s: %v\n%s", l.RID, err, out)
	}
	return os.Rename(tmp, name)
}

// LayeredPublisherOptions configure a LayeredPublisher.
type LayeredPublisherOptions struct {
	Layers []Layer // from EncodeLayers
	// Simulcast sends every layer with its RID on one transceiver (WHIP
	// simulcast, like OBS 32.1+); otherwise only Layers[Single] is sent, as a
	// plain single-layer track.
	Simulcast bool
	Single    int
	// NoKeyframeOnRequest: ignore PLI/FIR, keyframes come only every GOP (a
	// source that cannot be asked, like RTSP).
	NoKeyframeOnRequest bool
	API                 *webrtc.API
}

// LayeredPublisher sends pre-encoded layers at 30 fps, all layers' frame i
// at the same tick, and the test clip's Opus audio.
type LayeredPublisher struct {
	PC     *webrtc.PeerConnection
	layers []Layer
	tracks []*webrtc.TrackLocalStaticSample
	// simulcast: pion's local tracks do not stamp the mid and rid header
	// extensions a receiver needs to tell the layers apart, so each layer is
	// packetized here and stamped (as SimulcastPublisher does).
	rtpTracks []*webrtc.TrackLocalStaticRTP
	packers   []rtp.Packetizer
	mid       string
	midID     uint8
	ridID     uint8
	audio     *webrtc.TrackLocalStaticSample
	opus      []OpusPacket
	noKey     bool

	keyReq    atomic.Bool
	plis      atomic.Int64
	ridPLIs   sync.Map     // rid -> *atomic.Int64: keyframe requests per simulcast encoding
	dropped   sync.Map     // rid -> true: an encoding no longer sent (DropLayer)
	frame     atomic.Int64 // index (in the loop) of the next frame to send
	sent      atomic.Int64
	connected chan struct{}
	failed    chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewLayeredPublisher negotiates through signal and starts sending once
// connected.
func NewLayeredPublisher(ctx context.Context, signal Signal, opts LayeredPublisherOptions) (*LayeredPublisher, error) {
	if len(opts.Layers) == 0 {
		return nil, fmt.Errorf("mediatest: no layers")
	}
	clip, err := LoadClip("")
	if err != nil {
		return nil, err
	}
	api := opts.API
	if api == nil {
		if api, err = NewAPI(); err != nil {
			return nil, err
		}
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &LayeredPublisher{PC: pc, opus: clip.Opus, noKey: opts.NoKeyframeOnRequest,
		connected: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (*LayeredPublisher, error) {
		_ = p.Close()
		return nil, err
	}
	videoCap := webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
	p.layers = opts.Layers
	if !opts.Simulcast {
		if opts.Single < 0 || opts.Single >= len(opts.Layers) {
			return fail(fmt.Errorf("mediatest: no layer %d", opts.Single))
		}
		p.layers = opts.Layers[opts.Single : opts.Single+1]
	}
	var senders []*webrtc.RTPSender
	for i, l := range p.layers {
		var tr webrtc.TrackLocal
		if opts.Simulcast {
			rt, err := webrtc.NewTrackLocalStaticRTP(videoCap, "video", "mediatest", webrtc.WithRTPStreamID(l.RID))
			if err != nil {
				return fail(err)
			}
			p.rtpTracks = append(p.rtpTracks, rt)
			p.packers = append(p.packers, rtp.NewPacketizer(1200, 0, 0, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000))
			tr = rt
		} else {
			st, err := webrtc.NewTrackLocalStaticSample(videoCap, "video", "mediatest")
			if err != nil {
				return fail(err)
			}
			p.tracks = append(p.tracks, st)
			tr = st
		}
		if i == 0 {
			t, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return fail(err)
			}
			senders = append(senders, t.Sender())
		} else if err := senders[0].AddEncoding(tr); err != nil {
			return fail(fmt.Errorf("add simulcast encoding %s: %w", l.RID, err))
		}
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "mediatest")
	if err != nil {
		return fail(err)
	}
	at, err := pc.AddTransceiverFromTrack(p.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fail(err)
	}
	senders = append(senders, at.Sender())
	var once, failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(p.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(p.failed) })
		}
	})
	for i, s := range senders {
		rid := ""
		if i == 0 && opts.Simulcast {
			rid = p.layers[0].RID
		}
		p.wg.Go(func() { p.readRTCP(rid, s.ReadRTCP) })
	}
	if opts.Simulcast {
		// ReadRTCP reads the first encoding's; a keyframe request for
		// another rid (the server switching a viewer to it) comes here.
		for _, l := range p.layers[1:] {
			p.wg.Go(func() {
				p.readRTCP(l.RID, func() ([]rtcp.Packet, interceptor.Attributes, error) { return senders[0].ReadSimulcastRTCP(l.RID) })
			})
		}
	}
	if err := negotiate(ctx, pc, signal); err != nil {
		return fail(err)
	}
	if opts.Simulcast {
		for _, e := range senders[0].GetParameters().HeaderExtensions {
			switch e.URI {
			case sdp.SDESMidURI:
				p.midID = uint8(e.ID)
			case sdp.SDESRTPStreamIDURI:
				p.ridID = uint8(e.ID)
			}
		}
		for _, t := range pc.GetTransceivers() {
			if t.Sender() == senders[0] {
				p.mid = t.Mid()
			}
		}
	}
	p.wg.Go(p.playVideo)
	p.wg.Go(p.playAudio)
	return p, nil
}

// WaitConnected blocks until the PeerConnection is connected.
func (p *LayeredPublisher) WaitConnected(ctx context.Context) error {
	return waitConnected(ctx, p.connected, p.failed)
}

// PLIs counts keyframe requests received (answered or not).
func (p *LayeredPublisher) PLIs() int64 { return p.plis.Load() }

// DropLayer stops sending one simulcast encoding, as a browser does with
// its top layer when its CPU or uplink cannot keep up.
func (p *LayeredPublisher) DropLayer(rid string) { p.dropped.Store(rid, true) }

// ResumeLayer sends a dropped encoding again.
func (p *LayeredPublisher) ResumeLayer(rid string) { p.dropped.Delete(rid) }

// PLIsFor counts the keyframe requests received for one simulcast rid.
func (p *LayeredPublisher) PLIsFor(rid string) int64 {
	if n, ok := p.ridPLIs.Load(rid); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// Frames counts frame ticks sent (one per tick, whatever the layer count).
func (p *LayeredPublisher) Frames() int64 { return p.sent.Load() }

// SinceKeyframe is how many frames have been sent since the last keyframe.
func (p *LayeredPublisher) SinceKeyframe() int {
	i := int(p.frame.Load())
	frames := p.layers[0].Frames
	n := 0
	for j := (i - 1 + len(frames)) % len(frames); !frames[j].IDR && n < len(frames); j = (j - 1 + len(frames)) % len(frames) {
		n++
	}
	return n
}

// Close stops sending and closes the PeerConnection.
func (p *LayeredPublisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.done)
		err = p.PC.GracefulClose()
		p.wg.Wait()
	})
	return err
}

func (p *LayeredPublisher) playVideo() {
	select {
	case <-p.connected:
	case <-p.done:
		return
	}
	dur := time.Second / LayerFPS
	tick := time.NewTicker(dur)
	defer tick.Stop()
	n := len(p.layers[0].Frames)
	i := 0
	for {
		if p.keyReq.Swap(false) && !p.noKey {
			i = nextKeyframe(p.layers[0].Frames, i)
		}
		for l, tr := range p.tracks {
			if err := tr.WriteSample(media.Sample{Data: p.layers[l].Frames[i].Data, Duration: dur}); err != nil {
				return
			}
		}
		for l, tr := range p.rtpTracks {
			if _, gone := p.dropped.Load(p.layers[l].RID); gone {
				// A browser's RTP clock runs on while a layer is not sent
				// (its timestamps are capture times).
				p.packers[l].SkipSamples(uint32(90000 / LayerFPS))
				continue
			}
			for _, pk := range p.packers[l].Packetize(p.layers[l].Frames[i].Data, uint32(90000/LayerFPS)) {
				if p.midID != 0 {
					_ = pk.Header.SetExtension(p.midID, []byte(p.mid))
				}
				if p.ridID != 0 {
					_ = pk.Header.SetExtension(p.ridID, []byte(p.layers[l].RID))
				}
				if err := tr.WriteRTP(pk); err != nil && errors.Is(err, webrtc.ErrConnectionClosed) {
					return
				}
			}
		}
		p.sent.Add(1)
		i = (i + 1) % n
		p.frame.Store(int64(i))
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

func (p *LayeredPublisher) playAudio() {
	select {
	case <-p.connected:
	case <-p.done:
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
		pkt := p.opus[i]
		if err := p.audio.WriteSample(media.Sample{Data: pkt.Data, Duration: pkt.Duration}); err != nil {
			return
		}
		i = (i + 1) % len(p.opus)
		next = next.Add(pkt.Duration)
		timer.Reset(time.Until(next))
	}
}

func (p *LayeredPublisher) readRTCP(rid string, read func() ([]rtcp.Packet, interceptor.Attributes, error)) {
	n, _ := p.ridPLIs.LoadOrStore(rid, new(atomic.Int64))
	for {
		pkts, _, err := read()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.plis.Add(1)
				n.(*atomic.Int64).Add(1)
				p.keyReq.Store(true)
			}
		}
	}
}
