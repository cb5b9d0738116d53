package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// RTSPCredentials are what an RTSP client presented: the user and password
// of Basic auth, and the `key` query parameter (rtsp://host/room?key=...).
type RTSPCredentials struct {
	User     string
	Password string
	Key      string
}

// Empty reports whether the client presented nothing.
func (c RTSPCredentials) Empty() bool { return c.User == "" && c.Password == "" && c.Key == "" }

// RTSPAuthorizer decides who may publish and read over RTSP; room lookup and
// credentials are the caller's business (web.RTSPAuth implements it with the room
// store and room.Auth). An error wrapping ErrRoomNotFound answers 404; any
// other error answers 401.
type RTSPAuthorizer interface {
	// AuthorizePublish returns the host ID of the publisher (the same host
	// reconnecting replaces its previous stream, as with WHIP).
	AuthorizePublish(ctx context.Context, roomID string, c RTSPCredentials) (hostID string, err error)
	AuthorizeRead(ctx context.Context, roomID string, c RTSPCredentials) error
}

// RTSPDeps are the RTSP server's collaborators.
type RTSPDeps struct {
	Auth RTSPAuthorizer
	// Notice, if set, receives messages meant for a room's host (a track a
	// browser cannot play, a refused stream), e.g. to show in the studio.
	// It must not block.
	Notice func(roomID, message string)
}

// RTSPServer accepts RTSP publishers (ANNOUNCE/RECORD) and readers
// (DESCRIBE/PLAY) at rtsp://host/{room}, over TCP (interleaved) and UDP.
// It stops with the SFU (Shutdown) or with Close.
type RTSPServer struct {
	s      *SFU
	cfg    RTSPConfig
	deps   RTSPDeps
	log    *slog.Logger
	srv    *gortsplib.Server
	tcp    net.Addr
	closed atomic.Bool
	caps   *rtspCaps // sessions and readers per address and node

	mu      sync.Mutex
	streams map[string]*rtspReadStream // room -> what readers get
}

// ServeRTSP starts the RTSP server. One per SFU.
func (s *SFU) ServeRTSP(cfg RTSPConfig, deps RTSPDeps) (*RTSPServer, error) {
	cfg.setTuningDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Auth == nil {
		return nil, errors.New("media: ServeRTSP needs an authorizer")
	}
	rs := &RTSPServer{s: s, cfg: cfg, deps: deps, log: s.log.With("component", "rtsp"), streams: map[string]*rtspReadStream{}, caps: newRTSPCaps(cfg.Limits, s.metrics)}
	var tcpAddr atomic.Pointer[net.Addr]
	rs.srv = &gortsplib.Server{
		Handler:     &rtspHandler{rs},
		RTSPAddress: cfg.Listen,
		ReadTimeout: cfg.ReadTimeout,
		// Basic only: the password is a token or stream key that the
		// authorizer must see; digest would hide it.
		AuthMethods: []auth.VerifyMethod{auth.VerifyMethodBasic},
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				a := ln.Addr()
				tcpAddr.Store(&a)
			}
			return ln, err
		},
	}
	if p := cfg.udpPort(); p != 0 {
		host, _, _ := net.SplitHostPort(cfg.Listen)
		rs.srv.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(p))
		rs.srv.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(p+1))
	}

	s.rtsp.mu.Lock()
	if s.rtsp.srv != nil {
		s.rtsp.mu.Unlock()
		return nil, errors.New("media: the RTSP server is already running")
	}
	s.rtsp.initLocked(s)
	if err := rs.srv.Start(); err != nil {
		s.rtsp.mu.Unlock()
		return nil, fmt.Errorf("rtsp.listen: %w", err)
	}
	s.rtsp.srv = rs
	s.rtsp.cfg, s.rtsp.haveCfg = cfg, true
	s.rtsp.mu.Unlock()
	if a := tcpAddr.Load(); a != nil {
		rs.tcp = *a
	}
	rs.log.Info("rtsp listening", "tcp", rs.tcp, "udp_rtp", rs.srv.UDPRTPAddress, "udp_rtcp", rs.srv.UDPRTCPAddress)
	return rs, nil
}

// Addr is the bound RTSP (TCP) address.
func (rs *RTSPServer) Addr() net.Addr { return rs.tcp }

// Close stops the server; RTSP publishers' rooms go offline. Shutdown of
// the SFU does it too.
func (rs *RTSPServer) Close() {
	st := &rs.s.rtsp
	st.mu.Lock()
	if st.srv == rs {
		st.srv = nil
	}
	st.mu.Unlock()
	if !rs.closed.Swap(true) {
		rs.srv.Close()
	}
}

func (rs *RTSPServer) notice(roomID string) func(string) {
	return func(msg string) {
		if rs.deps.Notice != nil {
			rs.deps.Notice(roomID, msg)
		}
	}
}

// rtspRoomID maps a request path ("/room") onto a room ID.
func rtspRoomID(path string) (string, bool) {
	id := strings.Trim(path, "/")
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/?#") {
		return "", false
	}
	return id, true
}

func rtspCredentials(req *base.Request, query string) RTSPCredentials {
	var c RTSPCredentials
	if v, ok := req.Header["Authorization"]; ok {
		var h headers.Authorization
		if h.Unmarshal(v) == nil && h.Method == headers.AuthMethodBasic {
			c.User, c.Password = h.BasicUser, h.BasicPass
		}
	}
	if q, err := url.ParseQuery(query); err == nil {
		c.Key = q.Get("key")
	}
	return c
}

func rtspStatus(code base.StatusCode, msg string) *base.Response {
	return &base.Response{StatusCode: code, StatusMessage: msg}
}

// authError turns an authorizer's refusal into a response: 404 for an
// unknown room, else 401. Without credentials the client gets a challenge
// and may retry on the same connection; wrong credentials close it.
func (rs *RTSPServer) authError(roomID string, c RTSPCredentials, err error, what string) (*base.Response, error) {
	if errors.Is(err, ErrRoomNotFound) {
		return rtspStatus(base.StatusNotFound, "Not Found: no room "+strconv.Quote(roomID)), nil
	}
	if !c.Empty() {
		rs.s.rtspMetrics().errors.WithLabelValues("auth").Inc()
		rs.log.Warn("rtsp credentials refused", "room", roomID, "for", what, "err", err)
	}
	return rtspStatus(base.StatusUnauthorized, ""), liberrors.ErrServerAuth{}
}

// rtspPending is a publisher between ANNOUNCE and RECORD.
type rtspPending struct {
	roomID string
	hostID string
	plan   rtspPlan
}

// rtspReader is a reading session, from its first SETUP.
type rtspReader struct {
	roomID  string
	stream  *rtspReadStream
	playing bool
}

// rtspReadStream is what RTSP readers of a room get: the SFU's outgoing
// packets of the current RTSP source (re-packetized, as viewers get them),
// or, for a room published otherwise (WHIP), the room's outgoing packets
// through a tap (see rtsp_tap.go).
type rtspReadStream struct {
	stream  *gortsplib.ServerStream
	readers atomic.Int32 // sessions that SETUP this stream; guarded by RTSPServer.mu for tap streams
	once    sync.Once
	tap     *rtspTap // nil: fed by an RTSP source
}

func (r *rtspReadStream) write(m *description.Media, p *rtp.Packet) {
	_ = r.stream.WritePacketRTP(m, p) // fails only once closed
}

func (r *rtspReadStream) close() {
	r.once.Do(func() {
		if r.tap != nil {
			r.tap.stop()
		}
		r.stream.Close()
	})
}

// openReadStream offers src's tracks to RTSP readers of its room.
func (s *SFU) openReadStream(src *rtspSource, tracks []*rtspTrack, plans []rtspTrackPlan) {
	s.rtsp.mu.Lock()
	rs := s.rtsp.srv
	s.rtsp.mu.Unlock()
	if rs == nil {
		return
	}
	desc := &description.Session{}
	for i, p := range plans {
		f := p.readFormat()
		if f == nil {
			continue
		}
		m := &description.Media{Type: p.media.Type, Formats: []format.Format{f}}
		desc.Medias = append(desc.Medias, m)
		tracks[i].readMedia, tracks[i].readPT = m, f.PayloadType()
	}
	stream := &gortsplib.ServerStream{Server: rs.srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		src.log.Warn("rtsp read stream", "err", err)
		return
	}
	r := &rtspReadStream{stream: stream}
	src.read.Store(r)
	rs.mu.Lock()
	old := rs.streams[src.r.id]
	rs.streams[src.r.id] = r
	rs.mu.Unlock()
	if old != nil {
		old.close()
	}
	if src.finished.Load() { // ended meanwhile
		rs.dropStream(src.r.id, r)
	}
}

// closeReadStream disconnects the readers of r, src's tee.
func (s *SFU) closeReadStream(roomID string, r *rtspReadStream) {
	s.rtsp.mu.Lock()
	rs := s.rtsp.srv
	s.rtsp.mu.Unlock()
	if rs != nil {
		rs.dropStream(roomID, r)
		return
	}
	r.close()
}

func (rs *RTSPServer) dropStream(roomID string, r *rtspReadStream) {
	rs.mu.Lock()
	if rs.streams[roomID] == r {
		delete(rs.streams, roomID)
	}
	rs.mu.Unlock()
	r.close()
}

func (rs *RTSPServer) stream(roomID string) *rtspReadStream {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.streams[roomID]
}
