package media

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rtspState is the SFU's RTSP side: the server (if ServeRTSP was called),
// the pulled sources and the RTSP metrics. The zero value is ready; it is
// set up on first use and torn down when the SFU shuts down.
type rtspState struct {
	mu      sync.Mutex
	m       *rtspMetrics
	started bool // the shutdown watcher runs
	cfg     RTSPConfig
	haveCfg bool
	srv     *RTSPServer
	pulls   map[string]*rtspPull
	// trace, if set (tests), sees every packet as it arrives from RTSP.
	trace func(video bool, ts uint32, marker bool, at time.Time)
}

type rtspMetrics struct {
	sessions *prometheus.GaugeVec
	packets  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	reg      prometheus.Registerer
}

func newRTSPMetrics(reg prometheus.Registerer) *rtspMetrics {
	m := &rtspMetrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liveroom_rtsp_sessions", Help: "RTSP sessions by kind (publish, read, pull).",
		}, []string{"kind"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_rtsp_packets_received_total", Help: "RTP packets received from RTSP publishers and pulled sources.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_rtsp_errors_total",
			Help: "RTSP problems: auth (refused credentials), unplayable (codec browsers cannot play), decode, lost (packets), pull (failed attempts).",
		}, []string{"reason"}),
		reg: reg,
	}
	for _, l := range []string{"publish", "read", "pull"} {
		m.sessions.WithLabelValues(l)
	}
	for _, r := range []string{"auth", "unplayable", "decode", "lost", "pull"} {
		m.errors.WithLabelValues(r)
	}
	return m
}

// rtspMetrics returns the RTSP metrics, registering them (and starting the
// RTSP shutdown watcher) on first use.
func (s *SFU) rtspMetrics() *rtspMetrics {
	s.rtsp.mu.Lock()
	defer s.rtsp.mu.Unlock()
	return s.rtsp.initLocked(s)
}

func (st *rtspState) initLocked(s *SFU) *rtspMetrics {
	if st.m != nil {
		return st.m
	}
	st.m = newRTSPMetrics(s.metrics.reg)
	for _, c := range []prometheus.Collector{st.m.sessions, st.m.packets, st.m.errors} {
		if err := st.m.reg.Register(c); err != nil {
			s.log.Warn("rtsp metrics not registered", "err", err)
		}
	}
	st.started = s.spawn(func() {
		<-s.stop
		st.shutdown()
	})
	return st.m
}

func (st *rtspState) traceFn() func(bool, uint32, bool, time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.trace
}

func (st *rtspState) config() RTSPConfig {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.haveCfg {
		st.cfg.setTuningDefaults()
		st.haveCfg = true
	}
	return st.cfg
}

// shutdown runs once the SFU stops: rooms are already closed, so this only
// ends pulls and the RTSP server.
func (st *rtspState) shutdown() {
	st.mu.Lock()
	pulls := st.pulls
	st.pulls = nil
	srv := st.srv
	st.srv = nil
	m := st.m
	st.mu.Unlock()
	for _, p := range pulls {
		p.cancel()
	}
	if srv != nil {
		srv.srv.Close()
	}
	for _, p := range pulls {
		<-p.done
	}
	for _, c := range []prometheus.Collector{m.sessions, m.packets, m.errors} {
		m.reg.Unregister(c)
	}
}

// rtspAuthContext bounds an authorizer call.
func rtspAuthContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
