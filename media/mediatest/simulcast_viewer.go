package mediatest

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// RecvPacket is one RTP packet a LayerViewer received.
type RecvPacket struct {
	At       time.Time
	SSRC     uint32
	Seq      uint16
	TS       uint32
	Marker   bool
	Keyframe bool   // starts a VP8 keyframe
	Pic      uint16 // VP8 picture id (15-bit), if HasPic
	HasPic   bool
	Layer    int // from a SimulcastPublisher's mark; -1 if none
	Frame    uint32
	Payload  []byte // a copy, if the viewer keeps payloads (LayerViewerOptions)
	Padding  bool   // padding only (a bandwidth probe's): no payload
}

// LayerViewerOptions configure a LayerViewer.
type LayerViewerOptions struct {
	// Payloads keeps a copy of every video payload (H264Frames reads them).
	Payloads bool
}

// LayerViewer is a WHEP viewer that records every video packet (for
// checks on numbering across layer switches) and counts audio, and that
// writes its own transport-wide congestion control feedback: truthful (the
// arrival times it saw) or, with SetLossy, reporting every packet lost, so
// a test over loopback can make the server believe the link is congested.
type LayerViewer struct {
	PC *webrtc.PeerConnection

	lossy     atomic.Bool
	keep      bool // LayerViewerOptions.Payloads
	audio     atomic.Int64
	twccID    uint8 // guarded by mu
	connected chan struct{}
	failed    chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	video   []RecvPacket
	arrived map[uint16]time.Time // transport seq -> arrival, since the last feedback
	ssrc    uint32
}

// NewLayerViewer negotiates through signal (video and audio, VP8/Opus).
func NewLayerViewer(ctx context.Context, signal Signal) (*LayerViewer, error) {
	return NewLayerViewerWith(ctx, signal, LayerViewerOptions{})
}

// NewLayerViewerWith is NewLayerViewer with options.
func NewLayerViewerWith(ctx context.Context, signal Signal, opts LayerViewerOptions) (*LayerViewer, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, k)
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, k); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(offTestLinkHostSide)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &LayerViewer{PC: pc, connected: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{}),
		arrived: map[uint16]time.Time{}, keep: opts.Payloads}
	fail := func(err error) (*LayerViewer, error) {
		_ = v.Close()
		return nil, err
	}
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, recv); err != nil {
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
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
		video := t.Kind() == webrtc.RTPCodecTypeVideo
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			v.record(video, p, time.Now())
		}
	})
	if err := negotiate(ctx, pc, signal); err != nil {
		return fail(err)
	}
	if rd := pc.RemoteDescription(); rd != nil {
		// Parse a copy: Unmarshal caches into the shared description.
		var d sdp.SessionDescription
		if err := d.UnmarshalString(rd.SDP); err == nil {
			for _, md := range d.MediaDescriptions {
				for _, a := range md.Attributes {
					f := strings.Fields(a.Value)
					if a.Key != "extmap" || len(f) < 2 || f[1] != sdp.TransportCCURI {
						continue
					}
					idStr, _, _ := strings.Cut(f[0], "/")
					if id, err := strconv.Atoi(idStr); err == nil && id > 0 && id < 15 {
						v.mu.Lock() // record reads it
						v.twccID = uint8(id)
						v.mu.Unlock()
					}
				}
			}
		}
	}
	v.wg.Go(v.feedbackLoop)
	return v, nil
}

// SetLossy makes the feedback report every packet lost (true) or what
// arrived (false).
func (v *LayerViewer) SetLossy(lossy bool) { v.lossy.Store(lossy) }

// WaitConnected blocks until the PeerConnection is connected.
func (v *LayerViewer) WaitConnected(ctx context.Context) error {
	return waitConnected(ctx, v.connected, v.failed)
}

// Video returns the video packets received so far.
func (v *LayerViewer) Video() []RecvPacket {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]RecvPacket(nil), v.video...)
}

// AudioPackets is how many audio packets arrived.
func (v *LayerViewer) AudioPackets() int64 { return v.audio.Load() }

// Close closes the PeerConnection.
func (v *LayerViewer) Close() error {
	var err error
	v.closeOnce.Do(func() {
		close(v.done)
		err = v.PC.Close()
		v.wg.Wait()
	})
	return err
}

func (v *LayerViewer) record(video bool, p *rtp.Packet, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.twccID != 0 {
		if e := p.GetExtension(v.twccID); len(e) == 2 {
			v.arrived[uint16(e[0])<<8|uint16(e[1])] = at
		}
	}
	if !video {
		v.audio.Add(1)
		return
	}
	v.ssrc = p.SSRC
	r := RecvPacket{At: at, SSRC: p.SSRC, Seq: p.SequenceNumber, TS: p.Timestamp, Marker: p.Marker, Layer: -1,
		Padding: p.Padding && len(p.Payload) == 0}
	b := p.Payload
	if len(b) >= 5 && b[0]&0x80 != 0 && b[1]&0x80 != 0 && b[2]&0x80 != 0 {
		r.HasPic, r.Pic = true, uint16(b[2]&0x7f)<<8|uint16(b[3])
		if b[0]&0x10 != 0 && b[0]&0x07 == 0 && len(b) > 5 {
			off := 4
			if b[1]&0x40 != 0 {
				off = 5
			}
			r.Keyframe = off < len(b) && b[off]&0x01 == 0
		}
	}
	if l, f, ok := ParseMark(b); ok && r.HasPic { // a mark is in VP8 payloads only
		r.Layer, r.Frame = l, f
	}
	if v.keep {
		r.Payload = append([]byte(nil), b...)
	}
	v.video = append(v.video, r)
}

// feedbackLoop sends TWCC feedback every 100 ms, like a browser.
func (v *LayerViewer) feedbackLoop() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var count uint8
	for {
		select {
		case <-v.done:
			return
		case <-tick.C:
		}
		v.mu.Lock()
		arrived := v.arrived
		v.arrived = map[uint16]time.Time{}
		ssrc := v.ssrc
		v.mu.Unlock()
		if len(arrived) == 0 {
			continue
		}
		fb := buildTWCC(arrived, v.lossy.Load(), count, ssrc)
		count++
		if fb != nil {
			_ = v.PC.WriteRTCP([]rtcp.Packet{fb})
		}
	}
}

// withHeader sets fb's RTCP header for its size.
func withHeader(fb *rtcp.TransportLayerCC) *rtcp.TransportLayerCC {
	size := fb.MarshalSize()
	fb.Header = rtcp.Header{
		Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback,
		Padding: size != 20+len(fb.PacketChunks)*2+deltasLen(fb), Length: uint16(size/4 - 1),
	}
	return fb
}

func deltasLen(fb *rtcp.TransportLayerCC) int {
	n := 0
	for _, d := range fb.RecvDeltas {
		if d.Type == rtcp.TypeTCCPacketReceivedSmallDelta {
			n++
		} else {
			n += 2
		}
	}
	return n
}

// buildTWCC reports the packets from the lowest to the highest seq seen:
// each received one with its arrival (large deltas), or all lost.
func buildTWCC(arrived map[uint16]time.Time, lossy bool, count uint8, ssrc uint32) *rtcp.TransportLayerCC {
	var base uint16
	first := true
	for s := range arrived {
		if first || int16(s-base) < 0 {
			base, first = s, false
		}
	}
	var last uint16 = base
	for s := range arrived {
		if int16(s-last) > 0 {
			last = s
		}
	}
	n := int(last-base) + 1
	if n > 4000 {
		return nil
	}
	fb := &rtcp.TransportLayerCC{
		SenderSSRC: 1, MediaSSRC: ssrc, BaseSequenceNumber: base,
		PacketStatusCount: uint16(n), FbPktCount: count,
	}
	if lossy {
		fb.ReferenceTime = 0
		fb.PacketChunks = []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{
			Type: rtcp.TypeTCCRunLengthChunk, PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: uint16(n)}}
		return withHeader(fb)
	}
	var ref time.Time
	for s := base; ; s++ {
		if at, ok := arrived[s]; ok {
			ref = at
			break
		}
	}
	refUnits := ref.UnixMicro() / 64000
	fb.ReferenceTime = uint32(refUnits) & 0xffffff
	prev := refUnits * 64000
	for i := 0; i < n; i++ {
		s := base + uint16(i)
		sym := rtcp.TypeTCCPacketNotReceived
		if at, ok := arrived[s]; ok {
			sym = rtcp.TypeTCCPacketReceivedLargeDelta
			us := at.UnixMicro()
			d := (us - prev) / 250 * 250
			prev += d
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: d})
		}
		// One run-length chunk per packet keeps the encoding trivial.
		fb.PacketChunks = append(fb.PacketChunks, &rtcp.RunLengthChunk{
			Type: rtcp.TypeTCCRunLengthChunk, PacketStatusSymbol: sym, RunLength: 1})
	}
	return withHeader(fb)
}
