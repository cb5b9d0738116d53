package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are the SFU's collaborators.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the metrics; nil = a private registry (never the
	// global default one).
	Registerer prometheus.Registerer
	// OnLive is called when a room gets or loses its publisher, not on a
	// same-host replace. Calls are ordered and made from one goroutine; the
	// hook may call back into the SFU.
	OnLive func(roomID string, live bool)
}

// Session is a created WHIP or WHEP session.
type Session struct {
	ID        string
	AnswerSDP string
	// ETag identifies the ICE session (RFC 9725 If-Match on PATCH).
	ETag string
}

// SFU is the media server. All methods are safe for concurrent use.
type SFU struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	limits  *limits // WebRTC session caps (limits.go)
	codecs  codecTable
	pool    *sync.Pool // packets, shared by all rooms
	net     *listeners
	api     *webrtc.API
	viewAPI *webrtc.API // viewer sessions: no interceptors (engine.go)
	events  *liveEvents
	stop    chan struct{} // closed by Shutdown

	mu     sync.Mutex
	rooms  map[string]*room
	closed bool
	wg     sync.WaitGroup // every goroutine the SFU starts

	rtsp rtspState // RTSP server, pulls and metrics (rtsp_*.go); zero value ready
}

// New binds the UDP mux and the ICE-TCP listener and returns a running SFU.
func New(cfg Config, opts Options) (*SFU, error) {
	cfg.setTuningDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "media")
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("media metrics: %w", err)
	}
	logs := pionLogs{log: log}
	l, err := listen(cfg, logs.NewLogger("ice"))
	if err != nil {
		m.unregister()
		return nil, err
	}
	s := &SFU{
		cfg:     cfg,
		log:     log,
		metrics: m,
		limits:  newLimits(cfg.Limits, m),
		codecs:  newCodecTable(),
		pool:    newPacketPool(),
		net:     l,
		events:  newLiveEvents(opts.OnLive),
		stop:    make(chan struct{}),
		rooms:   map[string]*room{},
	}
	if s.api, err = newAPI(cfg, s.codecs, l, logs, false); err == nil {
		s.viewAPI, err = newAPI(cfg, s.codecs, l, logs, true)
	}
	if err != nil {
		_ = l.close()
		m.unregister()
		return nil, err
	}
	s.spawn(func() { s.events.run(s.stop) })
	s.spawn(s.egressLoop)
	log.Info("media listening", "udp", l.udpAddr, "tcp", l.tcpAddr)
	return s, nil
}

// spawn runs fn on a goroutine Shutdown waits for; false once shut down.
func (s *SFU) spawn(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(fn)
	return true
}

// acquire returns the room, creating it, and pins it against reaping until
// the returned release is called. The call in flight also counts as an SFU
// goroutine, so Shutdown waits for a Publish/Subscribe that is building a
// PeerConnection instead of closing the sockets under it.
func (s *SFU) acquire(roomID string) (*room, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	r := s.rooms[roomID]
	if r == nil {
		r = newRoom(s, roomID)
		s.rooms[roomID] = r
	}
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
	s.wg.Add(1)
	return r, func() {
		r.mu.Lock()
		r.pending--
		r.mu.Unlock()
		s.reap(r)
		s.wg.Done()
	}, nil
}

// reap forgets a room with no session, no reader and no call in flight,
// releasing its history buffers. A room's stream continuity only matters to viewers, and a
// room with viewers is never reaped.
func (s *SFU) reap(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	empty := len(r.sessions) == 0 && r.pending == 0 && r.stream == nil && !r.closed
	if empty && s.rooms[r.id] == r {
		r.closed = true
		delete(s.rooms, r.id)
	}
	r.mu.Unlock()
	if empty {
		r.video.hist.clear()
		r.audio.hist.clear()
	}
}

func (s *SFU) lookup(roomID string) (*room, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[roomID]
	return r, ok
}

// Publish starts a WHIP session for hostID (whoever publishes: a token's
// sub, or one fixed ID for a room's stream key; "" is an ID like any other).
// The same host replaces its current session at once (a reconnect: viewers
// continue on the new tracks without renegotiating); another host gets
// ErrPublisherConflict. The room goes live (OnLive) when the publisher's
// connection is up, not when Publish returns.
func (s *SFU) Publish(ctx context.Context, roomID, hostID, offerSDP string) (Session, error) {
	if roomID == "" {
		return Session{}, errors.New("media: empty room id")
	}
	if _, err := checkOffer(offerSDP, s.codecs, true); err != nil {
		return Session{}, err
	}
	r, release, err := s.acquire(roomID)
	if err != nil {
		return Session{}, err
	}
	defer release()
	if err := r.checkPublisher(hostID); err != nil {
		return Session{}, err
	}
	pub, answer, err := newPublisher(ctx, r, hostID, offerSDP)
	if err != nil {
		return Session{}, err
	}
	old, err := r.setSource(pub)
	if err != nil {
		pub.closePC()
		return Session{}, err
	}
	if old != nil {
		pub.log.Info("host reconnected, replacing publisher")
		old.stop()
	} else {
		pub.log.Info("publisher joined")
	}
	return Session{ID: pub.id, AnswerSDP: answer, ETag: pub.etag()}, nil
}

// Subscribe starts a WHEP session. It works before the room is live: media
// starts (at a keyframe) when a host publishes.
func (s *SFU) Subscribe(ctx context.Context, roomID, offerSDP string) (Session, error) {
	return s.subscribe(ctx, roomID, offerSDP, false)
}

func (s *SFU) subscribe(ctx context.Context, roomID, offerSDP string, edge bool) (Session, error) {
	if roomID == "" {
		return Session{}, errors.New("media: empty room id")
	}
	usable, err := checkOffer(offerSDP, s.codecs, false)
	if err != nil {
		return Session{}, err
	}
	if !edge {
		if err := s.checkRoomCodecs(roomID, offerSDP); err != nil { // offer_codecs.go
			return Session{}, err
		}
	}
	if !edge && admissionFrom(ctx) == nil { // a caller that did not admit first: node and room caps
		adm, err := s.limits.admit(admitViewer, roomID, "")
		if err != nil {
			return Session{}, err
		}
		defer adm.Release()
		ctx = WithAdmission(ctx, adm)
	}
	r, release, err := s.acquire(roomID)
	if err != nil {
		return Session{}, err
	}
	defer release()
	v, answer, err := newViewer(ctx, r, offerSDP, usable, edge)
	if err != nil {
		return Session{}, err
	}
	s.metrics.viewer(v, +1)
	if err := r.addViewer(v); err != nil {
		s.metrics.viewer(v, -1)
		v.closePC()
		return Session{}, err
	}
	v.log.Info("viewer joined", "edge", edge)
	return Session{ID: v.id, AnswerSDP: answer, ETag: v.etag()}, nil
}

func (s *SFU) session(roomID, sessionID string) (*room, session, error) {
	r, ok := s.lookup(roomID)
	if !ok {
		return nil, nil, errRoomGone(roomID)
	}
	sess, ok := r.session(sessionID)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q in room %q", ErrSessionNotFound, sessionID, roomID)
	}
	return r, sess, nil
}

// Patch applies an RFC 8840 SDP fragment (RFC 9725 PATCH): trickled
// candidates return ""; an ICE restart (new ice-ufrag/ice-pwd) returns the
// server's new fragment.
func (s *SFU) Patch(ctx context.Context, roomID, sessionID, sdpFrag string) (string, error) {
	_, sess, err := s.session(roomID, sessionID)
	if err != nil {
		return "", err
	}
	return sess.patch(ctx, sdpFrag)
}

// SessionETag returns a session's current ETag (it changes on ICE restart).
func (s *SFU) SessionETag(roomID, sessionID string) (string, error) {
	_, sess, err := s.session(roomID, sessionID)
	if err != nil {
		return "", err
	}
	return sess.etag(), nil
}

// IsPublisher reports whether a session is the room's publisher (WHIP) rather
// than a viewer (WHEP), so each endpoint acts only on its own kind.
func (s *SFU) IsPublisher(roomID, sessionID string) (bool, error) {
	_, sess, err := s.session(roomID, sessionID)
	if err != nil {
		return false, err
	}
	_, isViewer := sess.(*viewer) // the rest are publishers: WebRTC or RTSP
	return !isViewer, nil
}

// Close ends one session (WHIP/WHEP DELETE). Closing the publisher takes the
// room offline; its viewers stay and resume when a host publishes again.
func (s *SFU) Close(roomID, sessionID string) error {
	r, sess, err := s.session(roomID, sessionID)
	if err != nil {
		return err
	}
	r.closeSession(sess, "closed by client")
	return nil
}

// CloseRoom ends every session of a deleted room.
func (s *SFU) CloseRoom(roomID string) {
	s.mu.Lock()
	r := s.rooms[roomID]
	delete(s.rooms, roomID)
	s.mu.Unlock()
	if r != nil {
		r.shutdown("room deleted")
	}
}

// Live reports whether the room has a connected publisher.
func (s *SFU) Live(roomID string) bool {
	r, ok := s.lookup(roomID)
	return ok && r.isLive()
}

// RoomCodecs names the codecs the room's publisher sends now (e.g. ["H264",
// "Opus"]); empty until its first packets arrived.
func (s *SFU) RoomCodecs(roomID string) []string {
	cur, ok := s.roomCodecs(roomID)
	if !ok {
		return nil
	}
	return s.codecNames(cur)
}

// roomCodecs is the codec table index per kind the room's source sends
// (-1: none); false if there is no such room or it sends nothing yet.
func (s *SFU) roomCodecs(roomID string) ([numKinds]int, bool) {
	r, ok := s.lookup(roomID)
	if !ok {
		return [numKinds]int{}, false
	}
	return r.currentCodecs()
}

// codecNames names the codec table entries of cur (-1: none).
func (s *SFU) codecNames(cur [numKinds]int) []string {
	var names []string
	for _, c := range cur {
		if c >= 0 && c < len(s.codecs) {
			names = append(names, famName(s.codecs[c].fam))
		}
	}
	return names
}

// Viewers is the number of connected viewers in the room: a session
// answered but never connected (a flood of offers) is not a viewer.
func (s *SFU) Viewers(roomID string) int {
	r, ok := s.lookup(roomID)
	if !ok {
		return 0
	}
	n := 0
	for _, v := range *r.viewers.Load() {
		if !v.edge && v.ready.Load() {
			n++
		}
	}
	return n
}

// Addr returns the bound UDP and ICE-TCP addresses (tcp is nil if ICE-TCP is
// off). With listen_ip "" the UDP address has no IP.
func (s *SFU) Addr() (udp, tcp net.Addr) { return s.net.udpAddr, s.net.tcpAddr }

// ICEServers returns the STUN/TURN servers to hand to clients.
func (s *SFU) ICEServers() []ICEServer {
	out := make([]ICEServer, len(s.cfg.ICEServers))
	for i, srv := range s.cfg.ICEServers {
		out[i] = ICEServer{URLs: append([]string(nil), srv.URLs...), Username: srv.Username, Credential: srv.Credential}
	}
	return out
}

// Shutdown closes every session, waits for the SFU's goroutines (bounded by
// ctx) and closes the listeners.
func (s *SFU) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := s.rooms
	s.rooms = map[string]*room{}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, r := range rooms {
		wg.Go(func() { r.shutdown("shutdown") })
	}
	wg.Wait()
	close(s.stop)

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("media shutdown: %w", ctx.Err())
	}
	if cerr := s.net.close(); cerr != nil {
		s.log.Debug("close listeners", "err", cerr)
	}
	s.metrics.unregister()
	s.log.Info("media stopped")
	return err
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
