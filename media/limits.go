package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Limits cap what clients can make this node hold in WebRTC sessions. Every
// cap is checked by Admit*, before the offer is read or a PeerConnection is
// built. 0 = no limit. The per-address caps key on the client address the
// caller resolved (room.ClientKey: behind trusted proxies the forwarded
// address, IPv6 by /64).
type Limits struct {
	// UnconnectedPerAddress, UnconnectedPerRoom and UnconnectedPerNode
	// cap viewer sessions answered (or being answered) whose ICE/DTLS has
	// not connected yet. Many real viewers share one carrier-NAT address;
	// those over the per-address cap get 429 and retry, and a normal viewer
	// leaves this state within a second.
	UnconnectedPerAddress int `yaml:"unconnected_per_address"`
	UnconnectedPerRoom    int `yaml:"unconnected_per_room"`
	UnconnectedPerNode    int `yaml:"unconnected_per_node"`
	// ViewersPerAddress and ViewersPerNode cap connected viewers (edge
	// nodes pulling a room are not viewers and are not capped).
	ViewersPerAddress int `yaml:"viewers_per_address"`
	ViewersPerNode    int `yaml:"viewers_per_node"`
	// EgressMbps is the node's egress budget: while the media it sent to
	// viewers over the last second reaches it, new viewers are refused.
	EgressMbps int `yaml:"egress_mbps"`
	// PublishersUnconnectedPerAddress and PublishersUnconnectedPerNode cap
	// WHIP sessions not yet connected (a room has one host).
	PublishersUnconnectedPerAddress int `yaml:"publishers_unconnected_per_address"`
	PublishersUnconnectedPerNode    int `yaml:"publishers_unconnected_per_node"`
}

// Limit defaults, sized for a flash crowd of a few hundred viewers behind one
// carrier NAT (they join 50 at a time, the rest retry within seconds), and
// for an unconnected session costing a few hundred kB.
const (
	DefaultUnconnectedPerAddress           = 50
	DefaultUnconnectedPerRoom              = 400
	DefaultUnconnectedPerNode              = 400
	DefaultViewersPerAddress               = 1000
	DefaultViewersPerNode                  = 3000
	DefaultEgressMbps                      = 9000
	DefaultPublishersUnconnectedPerAddress = 4
	DefaultPublishersUnconnectedPerNode    = 50
)

// How long a refused client is told to wait: an unconnected session
// connects or times out soon; a viewer slot frees when someone leaves.
const (
	retryUnconnected = 2 * time.Second
	retryViewers     = 10 * time.Second
)

// SetDefaults fills every cap; like Config.SetDefaults it runs before the
// YAML is decoded, so a 0 in the file (no limit) wins.
func (l *Limits) SetDefaults() {
	*l = Limits{
		UnconnectedPerAddress:           DefaultUnconnectedPerAddress,
		UnconnectedPerRoom:              DefaultUnconnectedPerRoom,
		UnconnectedPerNode:              DefaultUnconnectedPerNode,
		ViewersPerAddress:               DefaultViewersPerAddress,
		ViewersPerNode:                  DefaultViewersPerNode,
		EgressMbps:                      DefaultEgressMbps,
		PublishersUnconnectedPerAddress: DefaultPublishersUnconnectedPerAddress,
		PublishersUnconnectedPerNode:    DefaultPublishersUnconnectedPerNode,
	}
}

// Validate reports the first negative cap, named by its YAML key.
func (l Limits) Validate() error {
	for _, f := range []struct {
		key string
		v   int
	}{
		{"unconnected_per_address", l.UnconnectedPerAddress},
		{"unconnected_per_room", l.UnconnectedPerRoom},
		{"unconnected_per_node", l.UnconnectedPerNode},
		{"viewers_per_address", l.ViewersPerAddress},
		{"viewers_per_node", l.ViewersPerNode},
		{"egress_mbps", l.EgressMbps},
		{"publishers_unconnected_per_address", l.PublishersUnconnectedPerAddress},
		{"publishers_unconnected_per_node", l.PublishersUnconnectedPerNode},
	} {
		if f.v < 0 {
			return fmt.Errorf("webrtc.limits.%s: must not be negative (0 = no limit), got %d", f.key, f.v)
		}
	}
	return nil
}

// ErrLimited is wrapped by every *LimitError.
var ErrLimited = errors.New("media: limit reached")

// LimitError is a refused admission: which cap, whether it is the client's
// own (per address: 429) or the node's or room's (503), and when to retry.
type LimitError struct {
	Reason     string // a refusal reason, e.g. "unconnected_per_address"
	PerClient  bool
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return "media: too many sessions (" + e.Reason + ")"
}

func (e *LimitError) Unwrap() error { return ErrLimited }

// Refusal reasons (label values of liveroom_media_admissions_refused_total).
const (
	refuseUnconnectedAddress  = "unconnected_per_address"
	refuseUnconnectedRoom     = "unconnected_per_room"
	refuseUnconnectedNode     = "unconnected_per_node"
	refuseViewersAddress      = "viewers_per_address"
	refuseViewersNode         = "viewers_per_node"
	refuseEgress              = "egress"
	refusePublishersAddress   = "publishers_unconnected_per_address"
	refusePublishersNode      = "publishers_unconnected_per_node"
	refuseRTSPSessionsAddress = "rtsp_sessions_per_address"
	refuseRTSPSessionsNode    = "rtsp_sessions_per_node"
	refuseRTSPReadersAddress  = "rtsp_readers_per_address"
	refuseRTSPReadersNode     = "rtsp_readers_per_node"
)

func refusalReasons() []string {
	return []string{
		refuseUnconnectedAddress, refuseUnconnectedRoom, refuseUnconnectedNode,
		refuseViewersAddress, refuseViewersNode, refuseEgress,
		refusePublishersAddress, refusePublishersNode,
		refuseRTSPSessionsAddress, refuseRTSPSessionsNode,
		refuseRTSPReadersAddress, refuseRTSPReadersNode,
	}
}

// Session kinds an admission is for.
const (
	admitViewer = iota
	admitPublisher
)

// Admission states.
const (
	admPending   = iota // admitted; the offer is being read and answered
	admClaimed          // a session holds it, not yet connected
	admConnected        // the session connected
	admClosed           // released
)

// Admission is one session's place under the limits, taken before its offer
// is read. A session claims it when built; it moves to connected when the
// session connects and is released when the session closes. Release frees an
// admission no session claimed (the offer was bad, the request failed).
type Admission struct {
	l     *limits
	kind  int
	room  string
	key   string // client address; "" = not counted per address
	state int    // guarded by l.mu
}

type admissionKey struct{}

// WithAdmission attaches a to ctx: Subscribe and Publish called with it
// count the session under it instead of admitting it themselves.
func WithAdmission(ctx context.Context, a *Admission) context.Context {
	return context.WithValue(ctx, admissionKey{}, a)
}

func admissionFrom(ctx context.Context) *Admission {
	a, _ := ctx.Value(admissionKey{}).(*Admission)
	return a
}

// AdmitViewer takes a place for a WHEP session of clientKey in roomID, or
// returns a *LimitError.
func (s *SFU) AdmitViewer(roomID, clientKey string) (*Admission, error) {
	return s.limits.admit(admitViewer, roomID, clientKey)
}

// AdmitPublisher takes a place for a WHIP session of clientKey.
func (s *SFU) AdmitPublisher(roomID, clientKey string) (*Admission, error) {
	return s.limits.admit(admitPublisher, roomID, clientKey)
}

// Release frees an admission that no session claimed; once claimed it is
// the session's, and Release does nothing. Safe to call more than once.
func (a *Admission) Release() {
	if a == nil {
		return
	}
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if a.state == admPending {
		a.l.leaveLocked(a)
	}
}

// claim makes the admission the session's; false if it was already used.
func (a *Admission) claim() bool {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if a.state != admPending {
		return false
	}
	a.state = admClaimed
	return true
}

func (a *Admission) connected() {
	if a == nil {
		return
	}
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.state != admClaimed {
		return
	}
	c := l.addrLocked(a.key)
	if a.kind == admitPublisher {
		l.pubUnconnected--
		c.pubUnconnected--
	} else {
		l.unconnected--
		c.unconnected--
		l.rooms[a.room]--
		l.viewers++
		c.viewers++
	}
	a.state = admConnected
	l.gauges()
	l.forgetLocked(a)
}

// close releases the admission of a session that ended.
func (a *Admission) close() {
	if a == nil {
		return
	}
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if a.state != admClosed {
		a.l.leaveLocked(a)
	}
}

// addrCount is what one client address holds.
type addrCount struct {
	unconnected, viewers, pubUnconnected int
}

// limits counts sessions by state, client address and room.
type limits struct {
	cfg     Limits
	metrics *metrics

	mu             sync.Mutex
	addrs          map[string]*addrCount
	rooms          map[string]int // unconnected viewers per room
	unconnected    int
	peak           int // most unconnected viewer sessions at once, ever
	viewers        int
	pubUnconnected int
}

func newLimits(cfg Limits, m *metrics) *limits {
	return &limits{cfg: cfg, metrics: m, addrs: map[string]*addrCount{}, rooms: map[string]int{}}
}

func (l *limits) admit(kind int, roomID, key string) (*Admission, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.addrs[key]
	if c == nil {
		c = &addrCount{}
	}
	if err := l.checkLocked(kind, roomID, key, c); err != nil {
		l.metrics.refused(err.Reason)
		return nil, err
	}
	if key != "" {
		l.addrs[key] = c
	}
	if kind == admitPublisher {
		l.pubUnconnected++
		c.pubUnconnected++
	} else {
		l.unconnected++
		c.unconnected++
		l.rooms[roomID]++
		l.peak = max(l.peak, l.unconnected)
	}
	l.gauges()
	return &Admission{l: l, kind: kind, room: roomID, key: key}, nil
}

func (l *limits) checkLocked(kind int, roomID, key string, c *addrCount) *LimitError {
	perAddr := key != ""
	if kind == admitPublisher {
		switch {
		case perAddr && over(c.pubUnconnected, l.cfg.PublishersUnconnectedPerAddress):
			return &LimitError{Reason: refusePublishersAddress, PerClient: true, RetryAfter: retryUnconnected}
		case over(l.pubUnconnected, l.cfg.PublishersUnconnectedPerNode):
			return &LimitError{Reason: refusePublishersNode, RetryAfter: retryUnconnected}
		}
		return nil
	}
	switch {
	case perAddr && over(c.unconnected, l.cfg.UnconnectedPerAddress):
		return &LimitError{Reason: refuseUnconnectedAddress, PerClient: true, RetryAfter: retryUnconnected}
	case perAddr && over(c.viewers+c.unconnected, l.cfg.ViewersPerAddress):
		return &LimitError{Reason: refuseViewersAddress, PerClient: true, RetryAfter: retryViewers}
	case over(l.rooms[roomID], l.cfg.UnconnectedPerRoom):
		return &LimitError{Reason: refuseUnconnectedRoom, RetryAfter: retryUnconnected}
	case over(l.unconnected, l.cfg.UnconnectedPerNode):
		return &LimitError{Reason: refuseUnconnectedNode, RetryAfter: retryUnconnected}
	case over(l.viewers+l.unconnected, l.cfg.ViewersPerNode):
		return &LimitError{Reason: refuseViewersNode, RetryAfter: retryViewers}
	case l.cfg.EgressMbps > 0 && l.metrics.egress.bitsPerSecond() >= float64(l.cfg.EgressMbps)*1e6:
		return &LimitError{Reason: refuseEgress, RetryAfter: retryViewers}
	}
	return nil
}

// addrLocked returns key's counts (a scratch value for "").
func (l *limits) addrLocked(key string) *addrCount {
	if c := l.addrs[key]; c != nil && key != "" {
		return c
	}
	return &addrCount{}
}

// leaveLocked undoes whatever a holds.
func (l *limits) leaveLocked(a *Admission) {
	c := l.addrLocked(a.key)
	switch {
	case a.kind == admitPublisher && a.state != admConnected:
		l.pubUnconnected--
		c.pubUnconnected--
	case a.kind == admitViewer && a.state == admConnected:
		l.viewers--
		c.viewers--
	case a.kind == admitViewer:
		l.unconnected--
		c.unconnected--
		l.rooms[a.room]--
	}
	a.state = admClosed
	l.gauges()
	l.forgetLocked(a)
}

// forgetLocked drops the empty entries of a's address and room.
func (l *limits) forgetLocked(a *Admission) {
	if c := l.addrs[a.key]; c != nil && *c == (addrCount{}) {
		delete(l.addrs, a.key)
	}
	if n, ok := l.rooms[a.room]; ok && n <= 0 {
		delete(l.rooms, a.room)
	}
}

func (l *limits) gauges() {
	l.metrics.sessionStates(l.unconnected, l.viewers, l.pubUnconnected)
	l.metrics.unconnectedPeak.Set(float64(l.peak))
}

// counts reports unconnected and connected viewers and unconnected
// publishers (tests).
func (l *limits) counts() (unconnected, viewers, pubUnconnected int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unconnected, l.viewers, l.pubUnconnected
}

// egressMeter turns the bytes sent to viewers into a rate over the last
// full second, sampled by the SFU's egress loop.
type egressMeter struct {
	bytes atomic.Uint64 // sent to viewers, ever
	rate  atomic.Uint64 // bits per second over the last sample
	last  uint64        // bytes at the last sample; the loop's own
	at    time.Time
}

func (e *egressMeter) add(n uint64) { e.bytes.Add(n) }

func (e *egressMeter) bitsPerSecond() float64 { return float64(e.rate.Load()) }

func (e *egressMeter) sample(now time.Time) {
	b := e.bytes.Load()
	if !e.at.IsZero() {
		if dt := now.Sub(e.at).Seconds(); dt > 0 {
			e.rate.Store(uint64(float64(b-e.last) * 8 / dt))
		}
	}
	e.last, e.at = b, now
}

// egressLoop samples the egress rate every second until the SFU stops.
func (s *SFU) egressLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.metrics.egress.sample(now)
		}
	}
}
