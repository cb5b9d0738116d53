package media

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// session is a WHIP or WHEP session as the room tracks it.
type session interface {
	sessionID() string
	patch(ctx context.Context, frag string) (string, error)
	etag() string
	closePC()
}

func (p *peer) sessionID() string { return p.id }

// room is one room's media state: its forwarders (which outlive publishers),
// the current source, and the sessions.
type room struct {
	id    string
	sfu   *SFU
	clk   *roomClock
	video *forwarder
	audio *forwarder
	// forwarders indexes video and audio by kind.
	forwarders [numKinds]*forwarder
	// layers are the video layers (simulcast.go); layers[0] is video.
	layers [maxLayers]*forwarder
	// viewers is copy-on-write: forwarders read it once per packet without a
	// lock; joins and leaves replace the slice under mu.
	viewers atomic.Pointer[[]*viewer]
	// taps is copy-on-write like viewers: non-WebRTC consumers of the
	// outgoing packets (RTSP readers of a room not published over RTSP).
	taps atomic.Pointer[[]*tap]
	// stream produces access units for readers (stream.go); nil = none.
	// Guarded by mu; its tap is in taps.
	stream *stream
	// follow is the video layer the readers take (reader_layer.go).
	follow readerFollow

	mu   sync.Mutex
	src  source // current publisher, nil = none
	live bool   // the source's media can flow (taps and codecs follow it)
	// announced says OnLive(true) was raised for a host of this node and
	// not yet taken back. An edge source (a pull from the origin node)
	// never raises OnLive: the origin does, for the whole cluster.
	announced bool
	sessions  map[string]session
	nViewers  int
	pending   int  // Publish/Subscribe calls in flight; the room is not reaped while > 0
	closed    bool // removed from the SFU; no session can join
}

func newRoom(s *SFU, id string) *room {
	r := &room{id: id, sfu: s, clk: newRoomClock(), sessions: map[string]session{}}
	empty := []*viewer{}
	r.viewers.Store(&empty)
	noTaps := []*tap{}
	r.taps.Store(&noTaps)
	r.video = newForwarder(kindVideo, r)
	r.audio = newForwarder(kindAudio, r)
	r.forwarders = [numKinds]*forwarder{r.video, r.audio}
	r.layers[0] = r.video
	r.follow.init()
	for i := 1; i < maxLayers; i++ {
		r.layers[i] = newForwarder(kindVideo, r)
		r.layers[i].layer = uint8(i)
	}
	return r
}

func errRoomGone(roomID string) error {
	return fmt.Errorf("room %q: %w (%w)", roomID, ErrRoomNotFound, ErrSessionNotFound)
}

// checkPublisher fails fast, before a PeerConnection is built, if another
// host holds the room.
func (r *room) checkPublisher(hostID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != nil && r.src.hostID() != hostID && !isEdge(r.src) {
		return fmt.Errorf("%w: room %q", ErrPublisherConflict, r.id)
	}
	return nil
}

// conflicts says whether src may not replace cur: a host replaces itself
// and any edge; an edge replaces an edge (the origin moved) but never a
// host of this node.
func conflicts(cur, src source) bool {
	if cur == nil || cur.hostID() == src.hostID() {
		return false
	}
	return !isEdge(cur) || isEdge(src)
}

// setSource makes src the room's publisher (any kind of source; one that is
// also a session, like WHIP, is registered as one). The same host replaces
// its previous source, returned for the caller to close: viewers stay and
// the forwarders carry the stream over. Another host is a conflict.
func (r *room) setSource(src source) (replaced source, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errRoomGone(r.id)
	}
	if s, ok := src.(interface{ closed() bool }); ok && s.closed() {
		return nil, fmt.Errorf("%w: publisher closed before it joined", ErrClosed)
	}
	if conflicts(r.src, src) {
		return nil, fmt.Errorf("%w: room %q", ErrPublisherConflict, r.id)
	}
	if old := r.src; old != nil {
		for _, f := range append(r.forwarders[:], r.extraLayers()...) {
			f.detach(old)
		}
		if s, ok := old.(session); ok {
			delete(r.sessions, s.sessionID())
		}
		r.sfu.metrics.source(old, -1)
		replaced = old
		r.follow.reset()
		// Readers of the stream (recorder, HLS, RTSP) take the next
		// source as a reconnect: they restart at its keyframe and do not
		// carry the old one's stall or the switch-over into their timeline.
		for _, t := range *r.taps.Load() {
			t.sourceGone(false)
		}
	}
	r.src = src
	if s, ok := src.(session); ok {
		r.sessions[s.sessionID()] = s
	}
	r.sfu.metrics.source(src, +1)
	return replaced, nil
}

// dropSourceLocked takes the room offline if src is its publisher; viewers
// stay and resume when a host publishes again.
func (r *room) dropSourceLocked(src source) {
	if r.src != src {
		return
	}
	r.src = nil
	r.sfu.metrics.source(src, -1)
	for _, f := range append(r.forwarders[:], r.extraLayers()...) {
		f.detach(src)
		// Nobody can usefully NACK an ended stream; free the buffers.
		f.hist.clear()
	}
	r.live = false
	r.follow.reset()
	if r.announced {
		r.announced = false
		r.sfu.events.live(r.id, false)
	}
	for _, t := range *r.taps.Load() {
		t.sourceGone(true)
	}
}

// currentCodecs returns, per kind, the codec table index the room's source
// sends (-1 = none); false if the room is not live or has no track yet.
func (r *room) currentCodecs() (c [numKinds]int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, f := range r.forwarders {
		c[k] = -1
		if in := f.cur.Load(); r.live && r.src != nil && in != nil && in.src == r.src {
			c[k], ok = in.codec, true
		}
	}
	return c, ok
}

// addTap starts offering the room's packets to t, if the room is live.
func (r *room) addTap(t *tap) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.live || r.src == nil {
		return false
	}
	next := append(slices.Clone(*r.taps.Load()), t)
	r.taps.Store(&next)
	return true
}

// removeTap stops offering packets to t; idempotent.
func (r *room) removeTap(t *tap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := *r.taps.Load()
	if !slices.Contains(cur, t) {
		return
	}
	next := slices.DeleteFunc(slices.Clone(cur), func(x *tap) bool { return x == t })
	r.taps.Store(&next)
}

// attach gives src an ingest for kind k, if src is still the room's source
// and does not already feed that kind.
func (r *room) attach(src source, k kind, codec int) *ingest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != src {
		return nil
	}
	f := r.forwarders[k]
	if cur := f.cur.Load(); cur != nil && cur.src == src {
		return nil
	}
	in := &ingest{f: f, src: src, codec: codec}
	f.setIngest(in)
	return in
}

// switchCodec replaces src's ingest on f with one for another codec (the
// source switched mid-stream); like a new source, the forwarder resumes at
// the next keyframe with continuous numbering. nil if src is no longer
// the room's source.
func (r *room) switchCodec(src source, f *forwarder, codec int) *ingest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != src {
		return nil
	}
	in := &ingest{f: f, src: src, codec: codec}
	f.setIngest(in)
	return in
}

// sourceConnected marks the room live once its publisher's media can flow.
func (r *room) sourceConnected(src source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != src {
		return
	}
	r.live = true
	if !r.announced && !isEdge(src) {
		r.announced = true
		r.sfu.events.live(r.id, true)
	}
}

func (r *room) addViewer(v *viewer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRoomGone(r.id)
	}
	if v.closed() {
		return fmt.Errorf("%w: viewer closed before it joined", ErrClosed)
	}
	r.sessions[v.id] = v
	if !v.edge {
		r.nViewers++
	}
	next := append(slices.Clone(*r.viewers.Load()), v)
	r.viewers.Store(&next)
	return nil
}

// detachLocked removes sess from the room; reports whether it was there.
func (r *room) detachLocked(sess session) bool {
	if r.sessions[sess.sessionID()] != sess {
		return false
	}
	delete(r.sessions, sess.sessionID())
	switch s := sess.(type) {
	case *viewer:
		if !s.edge {
			r.nViewers--
		}
		cur := *r.viewers.Load()
		next := make([]*viewer, 0, len(cur))
		for _, v := range cur {
			if v != s {
				next = append(next, v)
			}
		}
		r.viewers.Store(&next)
		r.sfu.metrics.viewer(s, -1)
		s.leaveLayers()
	case source:
		r.dropSourceLocked(s)
	}
	return true
}

// closeSession removes sess and closes its PeerConnection; idempotent.
func (r *room) closeSession(sess session, reason string) {
	r.mu.Lock()
	removed := r.detachLocked(sess)
	r.mu.Unlock()
	sess.closePC()
	if removed {
		r.sfu.log.Info("session closed", "room", r.id, "session", sess.sessionID(), "reason", reason)
		r.sfu.reap(r)
	}
}

func (r *room) session(id string) (session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	return s, ok
}

// shutdown closes every session; the room must already be out of the SFU's map.
func (r *room) shutdown(reason string) {
	r.mu.Lock()
	r.closed = true
	all := make([]session, 0, len(r.sessions))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	for _, s := range all {
		r.detachLocked(s)
	}
	if st := r.stream; st != nil {
		r.stream = nil
		st.shutdownLocked()
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(s.closePC)
	}
	wg.Wait()
	for _, f := range append(r.forwarders[:], r.extraLayers()...) {
		f.hist.clear()
	}
	if len(all) > 0 {
		r.sfu.log.Info("room closed", "room", r.id, "sessions", len(all), "reason", reason)
	}
}

func (r *room) isLive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

func (r *room) viewerCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nViewers
}
