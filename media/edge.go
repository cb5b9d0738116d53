package media

import (
	"context"
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// Cluster media: the node a room's host publishes to is its origin; another
// node with viewers of the room is an edge. The edge pulls the room from
// the origin once, over an ordinary WebRTC connection on which it is the
// receiving side (the origin serves it like a viewer, see SubscribeEdge),
// and feeds the tracks into its own forwarders as the room's source, so its
// viewers are served exactly as if the host were local. Edges
// (edge_pull.go) decides when to pull and from where: which node is the
// origin comes from Origins, and the offer reaches it through a NodeSignal.

// edgeHostID is the host of every edge source. An edge replaces an edge
// (the origin moved: viewers continue on the new tracks with rewritten
// SSRC, sequence numbers and timestamps, as on a host reconnect), a host
// publishing here replaces an edge, and an edge never replaces a host.
const edgeHostID = "\x00edge"

func isEdge(src source) bool { return src != nil && src.hostID() == edgeHostID }

// ErrNotOrigin: an edge asked a node whose room has no host of its own.
var ErrNotOrigin = errors.New("this node is not the room's origin")

// Signal carries an edge's SDP offer to the origin and returns its answer.
type Signal func(ctx context.Context, offer string) (answer string, err error)

// Edge is a running pull of a room from its origin.
type Edge struct {
	pub *publisher
}

// Done is closed when the pull has ended: its connection failed or closed,
// a host started publishing here, another pull replaced it, or Close.
func (e *Edge) Done() <-chan struct{} { return e.pub.done }

// Connected reports whether media from the origin can flow.
func (e *Edge) Connected() bool { return e.pub.live.Load() }

// Close ends the pull; the room goes quiet on this node until a host
// publishes here or another pull starts. Idempotent.
func (e *Edge) Close() { e.pub.r.closeSession(e.pub, "edge pull closed") }

// Pull makes this node an edge of roomID: it offers to receive one video
// and one audio track, hands the offer to signal and feeds what the origin
// sends into the room. A running pull is replaced once the origin has
// answered (its viewers see a gap no longer than the new connection's
// setup). It fails with ErrPublisherConflict if a host publishes to this
// node.
func (s *SFU) Pull(ctx context.Context, roomID string, signal Signal) (*Edge, error) {
	if roomID == "" {
		return nil, errors.New("media: empty room id")
	}
	r, release, err := s.acquire(roomID)
	if err != nil {
		return nil, err
	}
	defer release()
	r.mu.Lock()
	hosted := r.src != nil && !isEdge(r.src)
	r.mu.Unlock()
	if hosted {
		return nil, fmt.Errorf("%w: room %q has a host on this node", ErrPublisherConflict, roomID)
	}
	pub, answer, err := newEdgePublisher(ctx, r, signal)
	if err != nil {
		return nil, err
	}
	// The pull becomes the room's source before the answer is applied:
	// from then on the connection may come up and tracks arrive at any
	// moment, and they must find it in place.
	old, err := r.setSource(pub)
	if err != nil {
		pub.closePC()
		return nil, err
	}
	if old != nil {
		old.stop()
	}
	pub.sigMu.Lock()
	err = pub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
	pub.sigMu.Unlock()
	if err != nil {
		r.closeSession(pub, "bad answer from the origin")
		return nil, fmt.Errorf("edge answer: %w", err)
	}
	s.metrics.edgeStarts.Inc()
	pub.log.Info("edge pull started")
	return &Edge{pub: pub}, nil
}

// newEdgePublisher builds the pull's PeerConnection and gets the origin's
// answer to its offer; Pull applies it.
func newEdgePublisher(ctx context.Context, r *room, signal Signal) (*publisher, string, error) {
	s := r.sfu
	p, err := newPeer(s, r, "edge")
	if err != nil {
		return nil, "", err
	}
	pub := &publisher{peer: p, host: edgeHostID, keyframe: make(chan struct{}, 1)}
	p.pc.OnTrack(pub.onTrack)
	p.pc.OnConnectionStateChange(pub.onState)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := p.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			p.closePC()
			return nil, "", fmt.Errorf("edge %s transceiver: %w", k, err)
		}
	}
	// Armed before the answer is applied: the connection may come up (and
	// disarm it) as soon as it is.
	p.startConnectTimer(func() { r.closeSession(pub, "connect timeout") })
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.closePC()
		return nil, "", fmt.Errorf("edge offer: %w", err)
	}
	local, err := p.setLocal(ctx, offer)
	if err != nil {
		p.closePC()
		return nil, "", err
	}
	answer, err := signal(ctx, local)
	if err != nil {
		p.closePC()
		return nil, "", fmt.Errorf("edge signal: %w", err)
	}
	if !s.spawn(pub.keyframeLoop) {
		p.closePC()
		return nil, "", ErrClosed
	}
	return pub, answer, nil
}

// SubscribeEdge serves an edge node's pull: a viewer session, counted as an
// edge rather than a viewer, that only a room with a host on this node
// accepts (ErrNotOrigin otherwise, so that edges never chain).
func (s *SFU) SubscribeEdge(ctx context.Context, roomID, offerSDP string) (Session, error) {
	r, ok := s.lookup(roomID)
	if !ok {
		return Session{}, fmt.Errorf("%w: room %q is not live here", ErrNotOrigin, roomID)
	}
	r.mu.Lock()
	hosted := r.src != nil && !isEdge(r.src)
	r.mu.Unlock()
	if !hosted {
		return Session{}, fmt.Errorf("%w: room %q has no host here", ErrNotOrigin, roomID)
	}
	return s.subscribe(ctx, roomID, offerSDP, true)
}

// DropHost ends the session of roomID's host on this node, if any, and
// stops an RTSP pull of the room: the cluster moved the room's origin to
// another node (its host reconnected there), so viewers here follow it.
func (s *SFU) DropHost(roomID, reason string) {
	s.StopPull(roomID)
	r, ok := s.lookup(roomID)
	if !ok {
		return
	}
	r.mu.Lock()
	src := r.src
	if src == nil || isEdge(src) {
		r.mu.Unlock()
		return
	}
	r.dropSourceLocked(src)
	if sess, ok := src.(session); ok {
		delete(r.sessions, sess.sessionID())
	}
	r.mu.Unlock()
	src.stop()
	s.log.Info("host dropped", "room", roomID, "reason", reason)
	s.reap(r)
}

// Watched returns the rooms that have viewers on this node and no host of
// their own here: the rooms this node should pull from their origin.
func (s *SFU) Watched() []string {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	var out []string
	for _, r := range rooms {
		r.mu.Lock()
		if (r.nViewers > 0 || r.stream != nil) && (r.src == nil || isEdge(r.src)) { // readers (HLS, RTSP) watch too
			out = append(out, r.id)
		}
		r.mu.Unlock()
	}
	return out
}

// Hosting reports whether a host of this node (WebRTC or RTSP, not an
// edge pull) is connected and live in the room.
func (s *SFU) Hosting(roomID string) bool {
	r, ok := s.lookup(roomID)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.src != nil && !isEdge(r.src) && r.live
}
