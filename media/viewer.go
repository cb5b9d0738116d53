package media

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// viewer is a WHEP session: one video and one audio down-track fed from the
// room's forwarders through a bounded queue drained by its own writer
// goroutine, so a slow viewer only ever hurts itself.
type viewer struct {
	*peer
	tracks [numKinds]*downTrack
	queue  sendQueue
	edge   bool // an edge node pulling the room, not a person watching

	ready     atomic.Bool   // connected: packets can actually be sent
	needKey   atomic.Bool   // video skips to the next keyframe (join, or after a drop)
	resumeSeq atomic.Uint32 // seq of the keyframe video resumed at; older NACKs are ignored
	dropped   atomic.Uint64

	catchup atomic.Pointer[catchUp] // a start from the cached GOP (faststart.go)
	rtx     *rtxBudget              // caps retransmissions (rtx_budget.go); nil for edge pulls

	// layers (viewer_layer.go)
	cur, target atomic.Int32
	ctl         layerControl
	out         videoOut // the writer's rewriting state (viewer_rewrite.go)
	tw          twccLog
	pad         padder // the writer's padding for bandwidth probes (probe_pad.go)
}

// newViewer answers offer. usable says which kinds the offer can receive
// with a codec we send; only those get a down-track, because pion refuses to
// answer a section whose sender has no codec in common.
func newViewer(ctx context.Context, r *room, offer string, usable [numKinds]bool, edge bool) (*viewer, string, error) {
	s := r.sfu
	p, err := newSessionPeer(ctx, s, r, "viewer")
	if err != nil {
		return nil, "", err
	}
	v := &viewer{peer: p, queue: newSendQueue(s.cfg.ViewerQueue), edge: edge}
	v.needKey.Store(true)
	v.cur.Store(curJoining)
	now := time.Now()
	v.tw.epoch = now
	// A viewer starts on the lowest layer arriving now (its cached GOP is
	// the smallest fast-start burst, faststart.go) and the estimator moves
	// it up; edge pulls stay on the room's default layer.
	start := 0
	if ls := r.activeLayers(now, nil); len(ls) > 0 && !edge {
		start = ls[len(ls)-1].slot
	}
	v.target.Store(int32(start))
	v.ctl = layerControl{bwe: newBWE(&v.tw), sel: newSelector(start, now), pref: QualityAuto}
	if !edge {
		v.rtx = newRTXBudget()
	}
	streamID := "liveroom-" + r.id
	var senders []*webrtc.RTPSender
	for k := range numKinds {
		if !usable[k] {
			continue
		}
		dt := newDownTrack(kindToRTP(k), s.codecs, streamID)
		tr, err := p.pc.AddTransceiverFromTrack(dt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.closePC()
			return nil, "", fmt.Errorf("add %s transceiver: %w", dt.kind, err)
		}
		v.tracks[k] = dt
		senders = append(senders, tr.Sender())
	}
	p.pc.OnConnectionStateChange(v.onState)
	p.startConnectTimer(func() { r.closeSession(v, "connect timeout") })

	answer, err := p.answer(ctx, offer)
	if err != nil {
		p.closePC()
		return nil, "", err
	}
	// Our sendonly transceivers only get a mid if the offer had a matching
	// recvonly/sendrecv section whose codecs we share.
	active := false
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Mid() != "" && tr.Sender() != nil && tr.Direction() != webrtc.RTPTransceiverDirectionInactive {
			active = true
		}
	}
	if !active {
		p.closePC()
		return nil, "", fmt.Errorf("%w: no media section can receive our tracks", ErrNoCodec)
	}

	if !s.spawn(v.writeLoop) {
		p.closePC()
		return nil, "", ErrClosed
	}
	for _, snd := range senders {
		k := kindAudio
		if snd.Track().Kind() == webrtc.RTPCodecTypeVideo {
			k = kindVideo
		}
		if !s.spawn(func() { v.readRTCP(k, snd) }) {
			p.closePC()
			return nil, "", ErrClosed
		}
	}
	return v, answer, nil
}

func (v *viewer) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		v.connected()
		// From the cached GOP of its starting layer, or it asks that layer
		// for a keyframe (faststart.go).
		v.start()
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		v.ready.Store(false)
		v.s.spawn(func() { v.r.closeSession(v, st.String()) })
	}
}

// offer is called by a forwarder for every packet, for every viewer, on the
// publisher's goroutine: it must not block and must not allocate.
func (v *viewer) offer(f *forwarder, pk *packet) {
	if !v.ready.Load() {
		return
	}
	dt := v.tracks[pk.kind]
	if dt == nil || !dt.canSend(pk) {
		return
	}
	if pk.kind == kindVideo {
		v.offerVideo(f, pk)
		return
	}
	v.push(f, pk)
}

// push queues pk; a full queue drops it, and for video skips to the next
// keyframe.
func (v *viewer) push(f *forwarder, pk *packet) {
	pk.retain()
	if v.queue.push(pk) {
		v.queue.kickIfDue(pk)
		return
	}
	pk.release()
	v.queue.kick()
	f.metrics.drop(pk.kind, dropQueueFull)
	if v.dropped.Add(1)&0xff == 1 {
		v.log.Warn("viewer too slow, dropping to next keyframe", "dropped", v.dropped.Load())
	}
	if pk.kind == kindVideo {
		// The decoder now misses a reference; sending more inter-frames would
		// only show corruption. Skip to the next keyframe and ask for one.
		v.needKey.Store(true)
		f.requestKeyframe()
	}
}

// enqueue hands pk (already retained for this viewer) to the writer at once.
func (v *viewer) enqueue(pk *packet) bool {
	if !v.queue.push(pk) {
		return false
	}
	v.queue.kick()
	return true
}

// writeLoop is the viewer's only writer: SRTP encryption and the socket write
// happen here, never on the publisher's goroutine; so do its sender reports
// (sender_report.go). It wakes once per batch
// of queued packets (see sendQueue), not once per packet. Counters are
// flushed per batch to keep shared cache lines out of the per-packet path.
func (v *viewer) writeLoop() {
	var n, bytes [numKinds]uint64
	var sent [numKinds]sentCounts // cumulative, for sender reports
	reports := time.NewTicker(senderReportInterval)
	defer reports.Stop()
	flush := func() {
		for k := range n {
			if n[k] > 0 {
				v.s.metrics.forwarded(kind(k), n[k], bytes[k])
				n[k], bytes[k] = 0, 0
			}
		}
	}
	defer flush()
	for {
		select {
		case <-v.done:
			v.drain()
			return
		case <-reports.C:
			v.sendReports(&sent)
			continue
		case <-v.queue.wake:
		case <-v.pad.c: // a bandwidth probe's padding is due (probe_pad.go)
		}
		if cu := v.catchup.Load(); cu != nil && !cu.done && !v.catchUp(cu, func(pk *packet) {
			// The same path as live packets: the layer rewriting, the
			// transport-wide number and the TWCC log (one clock read per
			// packet: the backlog is paced, a few packets per wake-up).
			if v.sendPacket(pk, v.tw.now(time.Now())) {
				n[pk.kind]++
				bytes[pk.kind] += uint64(pk.n)
				sent[pk.kind].packets++
				sent[pk.kind].octets += uint32(pk.n)
			}
			pk.release()
		}) {
			v.drain()
			return
		}
		now := v.tw.now(time.Now()) // one send time per batch (TWCC log)
		for i := 0; ; i++ {
			pk := v.queue.pop()
			if pk == nil {
				break
			}
			// offer and nack only queue packets of kinds this viewer has.
			if i&15 == 15 {
				now = v.tw.now(time.Now()) // a long batch: keep send times honest
			}
			if v.sendPacket(pk, now) {
				n[pk.kind]++
				bytes[pk.kind] += uint64(pk.n)
				sent[pk.kind].packets++
				sent[pk.kind].octets += uint32(pk.n)
			}
			pk.release()
			if i&0xff == 0xff {
				flush()
			}
		}
		flush()
		if pad := v.padOut(); pad > 0 {
			v.s.metrics.probePadding(pad)
		}
	}
}

// sendPacket rewrites and sends pk; false if not sent.
func (v *viewer) sendPacket(pk *packet, nowUs uint32) bool {
	o := outHdr{seq: pk.seq, ts: pk.ts, payload: pk.payload()}
	if pk.kind == kindVideo {
		if !v.out.rewrite(v, pk, &o) {
			return false
		}
		v.compress(pk, &o) // a fast start's cached packets (faststart.go)
	}
	n, err := v.tracks[pk.kind].send(pk, &o, &v.out.tseq)
	if err != nil || n == 0 {
		return false
	}
	if o.twcc {
		v.tw.sent(o.tseq, nowUs, n)
	}
	return true
}

// drain releases what is left in the queue. A forwarder that loaded the
// viewer list just before removal may still enqueue afterwards; those
// packets are simply never returned to the pool and the GC takes them.
func (v *viewer) drain() {
	for pk := v.queue.pop(); pk != nil; pk = v.queue.pop() {
		pk.release()
	}
}

// readRTCP must run for every RTPSender (pion's interceptors depend on it).
// It forwards PLI/FIR to the publisher and answers NACKs from the room's
// history; everything else (receiver reports, REMB, TWCC) is discarded.
func (v *viewer) readRTCP(k kind, snd *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	f := v.r.forwarders[k]
	ssrc := uint32(0)
	if b := v.tracks[k].b.Load(); b != nil {
		ssrc = b.ssrc
	}
	for {
		n, _, err := snd.Read(buf)
		if err != nil {
			return
		}
		splitRTCP(buf[:n], func(pkt []byte) {
			if isTWCC(pkt) {
				v.feedback(pkt) // the most frequent: read without rtcp.Unmarshal
				return
			}
			pkts, err := rtcp.Unmarshal(pkt)
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					if kf := v.keyframeLayer(); kf != nil {
						kf.requestKeyframe()
					}
				case *rtcp.TransportLayerNack:
					v.nack(f, p)
				case *rtcp.ReceiverReport:
					v.receiverReport(p, ssrc)
				}
			}
		})
	}
}

// maxNACKPerReport bounds the work one RTCP packet can cause.
const maxNACKPerReport = 128

func (v *viewer) nack(f *forwarder, n *rtcp.TransportLayerNack) {
	if f.kind == kindVideo && (v.needKey.Load() || v.cur.Load() == curPaused) {
		// Skipping to a keyframe: old inter-frames are useless. Paused: the
		// link is too slow, retransmissions would only keep it full (and
		// starve the audio).
		return
	}
	resume := uint16(v.resumeSeq.Load())
	now := time.Now()
	var asked, sent, limited int
	missing := false // a video packet the viewer lost that is older than history and GOP reach
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			if asked >= maxNACKPerReport {
				break
			}
			asked++
			lf := f
			if f.kind == kindVideo {
				// The viewer's numbering onto its layer's (viewer_rewrite.go outSegs).
				slot, src, ok, padding := v.out.segs.source(seq)
				if padding {
					v.pad.resend(v, seq) // a gap left open would hold the receiver's frames until a keyframe
					continue
				}
				if !ok || int(slot) >= len(v.r.layers) {
					continue
				}
				lf, seq = v.r.layers[slot], src
				if int16(seq-resume) < 0 {
					continue // before this viewer's starting keyframe
				}
			}
			ok, over, gone := lf.retransmit(v, seq, now)
			switch {
			case ok:
				sent++
			case over:
				limited++
			case gone && f.kind == kindVideo:
				missing = true
			}
		}
	}
	v.s.metrics.nacks(asked, sent, limited)
	if missing {
		// The frames after it cannot be decoded until a keyframe, and a
		// browser asks for one only after seconds of waiting (Chrome: 3 s
		// without a decodable frame). Throttled like every request.
		if kf := v.keyframeLayer(); kf != nil {
			kf.requestKeyframe()
		}
	}
}
