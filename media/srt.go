package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	srt "github.com/datarhei/gosrt"
)

// SRTDeps are the SRT server's collaborators.
type SRTDeps struct {
	Auth IngestAuthorizer
	// Notice, if set, receives messages meant for a room's host (a refused
	// stream, audio without sound). It must not block.
	Notice func(roomID, message string)
}

// SRTServer accepts MPEG-TS publishers over SRT (listener mode); the
// stream id names the room and carries the key (srt_streamid.go). It stops
// with the SFU (Shutdown) or with Close.
type SRTServer struct {
	s    *SFU
	cfg  SRTConfig
	deps SRTDeps
	log  *slog.Logger
	ln   srt.Listener
	caps *connCaps
	m    *srtMetrics

	stop chan struct{} // closed by Close
	once sync.Once
	wg   sync.WaitGroup // the accept loop and one goroutine per connection

	// firstPacket, if set (tests), is called with the time a publisher's
	// first MPEG-TS bytes arrived.
	firstPacket atomic.Pointer[func(roomID string, at time.Time)]
	// trace, if set (tests), sees each demuxed video access unit with the
	// RTP timestamp it is sent to viewers with (offset 0 for a room's
	// first source).
	trace atomic.Pointer[func(ts uint32, at time.Time)]
}

// srtAuthTimeout bounds the authorizer's look-up during a handshake; the
// caller's own handshake timeout is a few seconds.
const srtAuthTimeout = 2 * time.Second

// ServeSRT starts the SRT listener at cfg.Address. One per SFU.
func (s *SFU) ServeSRT(cfg SRTConfig, deps SRTDeps) (*SRTServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Address == "" {
		return nil, errors.New("srt.address: empty (the SRT listener is off)")
	}
	if deps.Auth == nil {
		return nil, errors.New("media: ServeSRT needs an authorizer")
	}
	sc := srt.DefaultConfig()
	if cfg.Latency > 0 {
		sc.ReceiverLatency = cfg.Latency
	}
	m, err := newSRTMetrics(s.metrics.reg)
	if err != nil {
		return nil, fmt.Errorf("media: srt metrics (is the SRT server already running?): %w", err)
	}
	ln, err := srt.Listen("srt", cfg.Address, sc)
	if err != nil {
		m.unregister()
		return nil, fmt.Errorf("srt.address: %w", err)
	}
	ss := &SRTServer{s: s, cfg: cfg, deps: deps, log: s.log.With("component", "srt"), ln: ln, caps: newConnCaps(cfg.ConnectionsPerAddress, cfg.ConnectionsPerNode, refuseSRTAddress, refuseSRTNode), m: m, stop: make(chan struct{})}
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		ss.accept()
	}()
	go func() { // the SFU's shutdown closes the listener too
		select {
		case <-s.stop:
			ss.Close()
		case <-ss.stop:
		}
	}()
	ss.log.Info("srt listening", "udp", ln.Addr(), "passphrase", cfg.Passphrase != "")
	return ss, nil
}

// Addr is the bound UDP address.
func (ss *SRTServer) Addr() net.Addr { return ss.ln.Addr() }

// Close stops the listener and ends every SRT publisher (their rooms go
// offline), and waits for their goroutines.
func (ss *SRTServer) Close() {
	ss.once.Do(func() {
		close(ss.stop)
		ss.ln.Close()
	})
	ss.wg.Wait()
	ss.m.unregister()
}

func (ss *SRTServer) accept() {
	for {
		req, err := ss.ln.Accept2()
		if err != nil {
			return // closed
		}
		key := clientAddrKey(req.RemoteAddr())
		if reason := ss.caps.open(key); reason != "" {
			ss.s.metrics.refused(reason)
			ss.m.handshake(srtOverload)
			req.Reject(srt.REJX_OVERLOAD)
			continue
		}
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			defer ss.caps.close(key)
			ss.handle(req)
		}()
	}
}

// handle admits or rejects one handshake, then demuxes the publisher until
// it leaves.
func (ss *SRTServer) handle(req srt.ConnRequest) {
	remote := req.RemoteAddr().String()
	id, err := parseSRTStreamID(req.StreamId())
	if err != nil {
		ss.log.Info("srt stream id refused", "remote", remote, "err", err)
		ss.m.handshake(srtBadStreamID)
		req.Reject(srt.REJX_BAD_REQUEST)
		return
	}
	log := ss.log.With("room", id.roomID, "remote", remote)
	if !id.publish {
		log.Info("srt read refused: only publishing is served over SRT")
		ss.m.handshake(srtReadMode)
		req.Reject(srt.REJX_BAD_MODE)
		return
	}
	if r, ok := ss.checkPassphrase(req); !ok {
		log.Info("srt passphrase refused", "encrypted", req.IsEncrypted())
		ss.m.handshake(srtPassphrase)
		req.Reject(r)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), srtAuthTimeout)
	hostID, err := ss.deps.Auth.AuthorizePublish(ctx, id.roomID, id.key)
	cancel()
	if err != nil {
		log.Info("srt publish refused", "err", err)
		if errors.Is(err, ErrRoomNotFound) {
			ss.m.handshake(srtNoRoom)
			req.Reject(srt.REJX_NOTFOUND)
		} else {
			ss.m.handshake(srtAuth)
			req.Reject(srt.REJX_UNAUTHORIZED)
		}
		return
	}
	if ss.s.otherHostPublishing(id.roomID, hostID) {
		// Refused at the handshake, so the encoder shows it; StartAUSource
		// checks again should it start meanwhile.
		log.Info("srt publish refused: another host is publishing")
		ss.notice(id.roomID, "refused: another host is publishing in this room")
		ss.m.handshake(srtConflict)
		req.Reject(srt.REJX_CONFLICT)
		return
	}
	conn, err := req.Accept()
	if err != nil {
		log.Info("srt accept", "err", err)
		return
	}
	ss.m.handshake(srtAccepted)
	defer conn.Close()
	ss.publish(conn, id.roomID, hostID, log)
}

// otherHostPublishing reports whether a source of another host publishes
// in roomID (an edge pull gives way, as in setSource).
func (s *SFU) otherHostPublishing(roomID, hostID string) bool {
	r, ok := s.lookup(roomID)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.src != nil && r.src.hostID() != hostID && !isEdge(r.src)
}

func (ss *SRTServer) notice(roomID, msg string) {
	if ss.deps.Notice != nil {
		ss.deps.Notice(roomID, "SRT: "+msg)
	}
}

// checkPassphrase applies srt.passphrase: required when set, refused when
// not (the stream could not be decrypted).
func (ss *SRTServer) checkPassphrase(req srt.ConnRequest) (srt.RejectionReason, bool) {
	switch {
	case ss.cfg.Passphrase == "" && !req.IsEncrypted():
		return 0, true
	case ss.cfg.Passphrase == "" || !req.IsEncrypted():
		return srt.REJ_UNSECURE, false
	case req.SetPassphrase(ss.cfg.Passphrase) != nil:
		return srt.REJ_BADSECRET, false
	}
	return 0, true
}

// publish reads the program map, makes the connection the room's source
// and demuxes into it.
func (ss *SRTServer) publish(conn srt.Conn, roomID, hostID string, log *slog.Logger) {
	notice := func(msg string) { ss.notice(roomID, msg) }
	timeout := ss.cfg.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultSRTReadTimeout
	}
	r := &srtReader{Conn: conn, timeout: timeout, idle: time.AfterFunc(timeout, func() { conn.Close() })}
	defer r.idle.Stop()
	if f := ss.firstPacket.Load(); f != nil {
		r.first = func(at time.Time) { (*f)(roomID, at) }
	}
	d, err := openTS(r)
	if err != nil {
		log.Info("srt stream refused", "err", err)
		if errors.Is(err, ErrUnplayable) {
			notice(err.Error())
		}
		return
	}
	src, err := ss.s.StartAUSource(roomID, hostID, AUSourceOptions{
		Protocol: "srt", Remote: conn.RemoteAddr().String(), AAC: d.aac,
		Close:  func() { go conn.Close() },
		Notice: notice,
	})
	if err != nil {
		log.Info("srt publish refused", "err", err)
		if errors.Is(err, ErrPublisherConflict) {
			notice("refused: another host is publishing in this room")
		}
		return
	}
	for _, n := range d.notices {
		notice(n)
	}
	if f := ss.trace.Load(); f != nil {
		d.onVideo = func(pts time.Duration) { (*f)(ptsTicks(pts, 90000), time.Now()) }
	}
	err = d.run(src) // an ErrUnplayable here was refused by src, with its notice
	src.Close(fmt.Sprint("disconnected: ", err))
}

// srtReader closes a connection that delivers no data for its timeout
// (a caller may keep SRT alive without sending any) and notes when the
// first bytes arrive.
type srtReader struct {
	srt.Conn
	timeout time.Duration
	idle    *time.Timer // closes Conn
	first   func(time.Time)
}

func (r *srtReader) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		r.idle.Reset(r.timeout)
		if r.first != nil {
			r.first(time.Now())
			r.first = nil
		}
	}
	return n, err
}
