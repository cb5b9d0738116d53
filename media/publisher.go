package media

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// publisher is a WHIP session and the WebRTC implementation of source.
type publisher struct {
	*peer
	host     string
	keyframe chan struct{} // capacity 1: pending keyframe request
	kfLayers atomic.Uint32 // bit per layer slot with a pending request
	ssrcs    [maxLayers]atomic.Uint32
	slots    map[string]int // simulcast rid -> layer slot; nil = one layer
	live     atomic.Bool    // connected once: the room may go live
}

var _ source = (*publisher)(nil)

func newPublisher(ctx context.Context, r *room, hostID, offer string) (*publisher, string, error) {
	s := r.sfu
	p, err := newSessionPeer(ctx, s, r, "publisher")
	if err != nil {
		return nil, "", err
	}
	pub := &publisher{peer: p, host: hostID, keyframe: make(chan struct{}, 1), slots: offerLayers(offer)}
	p.log = p.log.With("host", hostID)
	p.pc.OnTrack(pub.onTrack)
	p.pc.OnConnectionStateChange(pub.onState)
	p.startConnectTimer(func() { r.closeSession(pub, "connect timeout") })

	answer, err := p.answer(ctx, preferOpus(offer))
	if err != nil {
		p.closePC()
		return nil, "", err
	}
	receiving := false
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Mid() != "" && tr.Receiver() != nil &&
			(tr.Direction() == webrtc.RTPTransceiverDirectionRecvonly || tr.Direction() == webrtc.RTPTransceiverDirectionSendrecv) {
			receiving = true
		}
	}
	if !receiving {
		p.closePC()
		return nil, "", fmt.Errorf("%w: no media section sends us a usable codec", ErrNoCodec)
	}
	if !s.spawn(pub.keyframeLoop) {
		p.closePC()
		return nil, "", ErrClosed
	}
	return pub, answer, nil
}

func (pub *publisher) hostID() string { return pub.host }

func (pub *publisher) stop() { pub.closePC() }

// requestKeyframe implements source: it only flags the request; keyframeLoop
// writes the PLI so that the packet path never waits on a socket.
func (pub *publisher) requestKeyframe() { pub.requestLayerKeyframe(0) }

// requestLayerKeyframe implements layerKeyframer: a PLI for one simulcast
// layer's SSRC.
func (pub *publisher) requestLayerKeyframe(slot int) {
	pub.kfLayers.Or(1 << slot)
	select {
	case pub.keyframe <- struct{}{}:
	default:
	}
}

func (pub *publisher) keyframeLoop() {
	for {
		select {
		case <-pub.done:
			return
		case <-pub.keyframe:
			slots := pub.kfLayers.Swap(0)
			for i := range maxLayers {
				ssrc := pub.ssrcs[i].Load()
				if slots&(1<<i) == 0 || ssrc == 0 {
					continue
				}
				if err := pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err == nil {
					pub.s.metrics.pliSent()
				}
			}
		}
	}
}

func (pub *publisher) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		pub.peer.connected()
		if !pub.live.Swap(true) {
			pub.log.Info("publisher connected")
			pub.r.sourceConnected(pub)
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		pub.s.spawn(func() { pub.r.closeSession(pub, st.String()) })
	}
}

// onTrack runs on a pion goroutine; the reading happens on goroutines the SFU
// owns so that Shutdown can wait for them.
func (pub *publisher) onTrack(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	k := kindAudio
	if track.Kind() == webrtc.RTPCodecTypeVideo {
		k = kindVideo
	}
	c := track.Codec()
	codec := pub.s.codecs.match(c.MimeType, c.SDPFmtpLine)
	var in *ingest
	rid, slot := track.RID(), 0
	if k == kindVideo && rid != "" {
		var ok bool
		if slot, ok = pub.slots[rid]; !ok {
			slot = -1 // a rid the offer did not list, or beyond maxLayers
		}
	}
	if codec >= 0 && pub.s.codecs[codec].kind == track.Kind() && slot >= 0 {
		if k == kindVideo {
			in = pub.r.attachLayer(pub, slot, codec, rid)
		} else {
			in = pub.r.attach(pub, k, codec)
		}
	}
	if in == nil {
		pub.log.Warn("ignoring publisher track", "kind", k, "codec", c.MimeType, "rid", rid)
	} else {
		if k == kindVideo {
			pub.ssrcs[slot].Store(uint32(track.SSRC()))
		}
		pub.log.Info("publisher track", "kind", k, "codec", c.MimeType, "fmtp", c.SDPFmtpLine, "rid", rid)
	}
	// Unattached tracks are still read (and dropped) so pion's buffers and
	// interceptors keep working. Sender reports go to the track's own
	// ingest: each simulcast layer has its own timestamp base.
	var rep atomic.Pointer[ingest]
	rep.Store(in)
	pub.s.spawn(func() { pub.readTrack(track, k, in, &rep) })
	read := recv.Read
	if rid != "" {
		read = func(b []byte) (int, interceptor.Attributes, error) { return recv.ReadSimulcast(b, rid) }
	}
	pub.s.spawn(func() { pub.readRTCP(read, &rep) })
}

func (pub *publisher) readTrack(track *webrtc.TrackRemote, k kind, in *ingest, rep *atomic.Pointer[ingest]) {
	buf := make([]byte, 1600)
	var p rtp.Packet
	pt := track.PayloadType()
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		if err := p.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if webrtc.PayloadType(p.PayloadType) != pt {
			// The sender switched codecs mid-stream (pion has updated the
			// track's codec for the new payload type): an edge whose
			// origin's host went from VP8 to H264.
			pt = webrtc.PayloadType(p.PayloadType)
			in = pub.switchCodec(track, k, in)
			rep.Store(in)
		}
		if in != nil {
			in.writeRTP(&p)
		}
	}
}

// switchCodec gives the track an ingest for its current codec; the old
// one (possibly nil) if that codec is not one the room can forward.
func (pub *publisher) switchCodec(track *webrtc.TrackRemote, k kind, in *ingest) *ingest {
	c := track.Codec()
	codec := pub.s.codecs.match(c.MimeType, c.SDPFmtpLine)
	if codec < 0 || (in != nil && codec == in.codec) || pub.s.codecs[codec].kind != track.Kind() {
		return in
	}
	next := pub.r.switchCodec(pub, pub.r.forwarders[k], codec)
	if next == nil {
		return in
	}
	pub.log.Info("publisher track switched codec", "kind", k, "codec", c.MimeType, "fmtp", c.SDPFmtpLine)
	return next
}

// readRTCP reads a receiver's RTCP (the report interceptor needs it read)
// and hands the publisher's sender reports to the room clock: they relate
// the publisher's audio and video timestamps (clock.go).
func (pub *publisher) readRTCP(read func([]byte) (int, interceptor.Attributes, error), rep *atomic.Pointer[ingest]) {
	buf := make([]byte, 1500)
	for {
		n, _, err := read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				if in := rep.Load(); in != nil {
					in.senderReport(fromNTP(sr.NTPTime), sr.RTPTime)
				}
			}
		}
	}
}
