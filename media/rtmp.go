package media

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RTMPDeps are the RTMP server's collaborators.
type RTMPDeps struct {
	Auth IngestAuthorizer
	// Notice, if set, receives messages meant for a room's host (a refused
	// codec, dropped audio), e.g. to show in the studio: OBS hides RTMP
	// status messages. It must not block.
	Notice func(roomID, message string)
}

// RTMPServer accepts RTMP publishers (and RTMPS on its own port) at
// rtmp://host/live with the stream key as the stream name (OBS "Custom"),
// or rtmp://host/live/{room}?key=…; each becomes an AUSource of its room.
// It stops with the SFU (Shutdown) or with Close.
type RTMPServer struct {
	s    *SFU
	cfg  RTMPConfig
	deps RTMPDeps
	log  *slog.Logger
	caps *connCaps

	plain, secure net.Listener // nil when off

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	done   chan struct{}

	nConns  prometheus.Gauge
	refused *prometheus.CounterVec

	// trace, if set (tests), sees the arrival of every video frame with
	// the RTP timestamp it is sent to viewers with (offset 0 for a room's
	// first source).
	trace atomic.Pointer[func(ts uint32, at time.Time)]
}

// ServeRTMP starts RTMP (cfg.Address) and, when tlsCfg is enabled, RTMPS.
// One per SFU; an empty cfg.Address with RTMPS off is an error (the caller
// does not start it).
func (s *SFU) ServeRTMP(cfg RTMPConfig, tlsCfg RTMPSConfig, deps RTMPDeps) (*RTMPServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := tlsCfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Auth == nil {
		return nil, errors.New("media: ServeRTMP needs an authorizer")
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultRTMPReadTimeout
	}
	rs := &RTMPServer{
		s: s, cfg: cfg, deps: deps, log: s.log.With("component", "rtmp"),
		caps: newConnCaps(cfg.Limits.ConnsPerAddress, cfg.Limits.ConnsPerNode, refuseRTMPAddress, refuseRTMPNode), conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
	}
	rs.nConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liveroom_rtmp_connections", Help: "Open RTMP and RTMPS connections (handshaking, publishing).",
	})
	rs.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveroom_rtmp_refused_total",
		Help: "RTMP publishers refused: target (URL), auth (key), conflict (another host), unplayable (codec, B-frames).",
	}, []string{"reason"})
	for _, r := range []string{"target", "auth", "conflict", "unplayable"} {
		rs.refused.WithLabelValues(r)
	}
	if cfg.Address == "" && !tlsCfg.Enabled() {
		return nil, errors.New("media: ServeRTMP: neither rtmp.address nor rtmps is configured")
	}
	if cfg.Address != "" {
		ln, err := net.Listen("tcp", cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("rtmp.address: %w", err)
		}
		rs.plain = ln
	}
	if tlsCfg.Enabled() {
		cert, err := tls.LoadX509KeyPair(tlsCfg.Cert, tlsCfg.Key)
		if err == nil {
			var ln net.Listener
			ln, err = tls.Listen("tcp", tlsCfg.Address, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			rs.secure = ln
		}
		if err != nil {
			if rs.plain != nil {
				rs.plain.Close()
			}
			return nil, fmt.Errorf("rtmps: %w", err)
		}
	}
	for _, c := range []prometheus.Collector{rs.nConns, rs.refused} {
		if err := s.metrics.reg.Register(c); err != nil {
			rs.log.Warn("rtmp metrics not registered", "err", err)
		}
	}
	if !s.spawn(func() {
		select {
		case <-s.stop:
		case <-rs.done:
		}
		rs.Close()
	}) {
		rs.closeListeners()
		return nil, ErrClosed
	}
	for _, ln := range []net.Listener{rs.plain, rs.secure} {
		if ln != nil {
			rs.wg.Go(func() { rs.accept(ln) })
		}
	}
	rs.log.Info("rtmp listening", "rtmp", addrOf(rs.plain), "rtmps", addrOf(rs.secure))
	return rs, nil
}

func addrOf(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// Addr is the bound RTMP address; nil when plain RTMP is off.
func (rs *RTMPServer) Addr() net.Addr { return addrOf(rs.plain) }

// TLSAddr is the bound RTMPS address; nil when RTMPS is off.
func (rs *RTMPServer) TLSAddr() net.Addr { return addrOf(rs.secure) }

func (rs *RTMPServer) closeListeners() {
	for _, ln := range []net.Listener{rs.plain, rs.secure} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Close stops the listeners and ends every connection (their rooms go
// offline) and waits for them. Shutdown of the SFU does it too.
func (rs *RTMPServer) Close() {
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return
	}
	rs.closed = true
	close(rs.done)
	for c := range rs.conns {
		c.Close()
	}
	rs.mu.Unlock()
	rs.closeListeners()
	rs.wg.Wait()
	rs.s.metrics.reg.Unregister(rs.nConns)
	rs.s.metrics.reg.Unregister(rs.refused)
}

func (rs *RTMPServer) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		key := clientAddrKey(nc.RemoteAddr())
		if reason := rs.caps.open(key); reason != "" {
			rs.s.metrics.refused(reason)
			rs.log.Warn("rtmp connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
			nc.Close()
			continue
		}
		rs.mu.Lock()
		if rs.closed {
			rs.mu.Unlock()
			rs.caps.close(key)
			nc.Close()
			return
		}
		rs.conns[nc] = struct{}{}
		rs.mu.Unlock()
		rs.wg.Go(func() {
			rs.nConns.Inc()
			defer func() {
				rs.nConns.Dec()
				rs.mu.Lock()
				delete(rs.conns, nc)
				rs.mu.Unlock()
				rs.caps.close(key)
				nc.Close()
			}()
			rs.serve(nc, ln == rs.secure)
		})
	}
}

func (rs *RTMPServer) notice(roomID, msg string) {
	if rs.deps.Notice != nil && roomID != "" {
		rs.deps.Notice(roomID, msg)
	}
}

// rtmpApp is the only RTMP application: rtmp://host/live.
const rtmpApp = "live"

// errRTMPTarget: the publish URL names no room or key this server knows.
var errRTMPTarget = errors.New("publish to rtmp://HOST/live with the stream key as the key, or rtmp://HOST/live/{room}?key={stream key}")

// parseRTMPTarget reads the room and key from a publish URL (the
// connect's tcUrl joined with the publish name): /live/{key} (OBS
// "Custom": roomID is "", the key names the room) or /live/{room}?key=….
func parseRTMPTarget(u *url.URL) (roomID, key string, err error) {
	if u == nil {
		return "", "", errRTMPTarget
	}
	app, rest, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || app != rtmpApp {
		return "", "", fmt.Errorf("unknown application %q: %w", app, errRTMPTarget)
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || len(rest) > 256 || strings.ContainsAny(rest, "/?#\x00") {
		return "", "", errRTMPTarget
	}
	q, qerr := url.ParseQuery(u.RawQuery)
	if k := q.Get("key"); qerr == nil && k != "" {
		if len(k) > 4096 {
			return "", "", errRTMPTarget
		}
		return rest, k, nil
	}
	return "", rest, nil
}

// Refusal reasons (liveroom_refused_total).
const (
	refuseRTMPAddress = "rtmp_conns_per_address"
	refuseRTMPNode    = "rtmp_conns_per_node"
)
