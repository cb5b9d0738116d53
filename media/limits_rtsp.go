package media

import (
	"fmt"
	"sync"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// RTSPLimits cap RTSP sessions (publishers and readers, counted from their
// first ANNOUNCE or SETUP) and readers, per client address (the TCP peer,
// IPv6 by /64) and per node. 0 = no limit. A request past a cap is
// answered 503 and its session closed.
type RTSPLimits struct {
	SessionsPerAddress int `yaml:"sessions_per_address"`
	SessionsPerNode    int `yaml:"sessions_per_node"`
	ReadersPerAddress  int `yaml:"readers_per_address"`
	ReadersPerNode     int `yaml:"readers_per_node"`
}

// RTSP limit defaults.
const (
	DefaultRTSPSessionsPerAddress = 20
	DefaultRTSPSessionsPerNode    = 500
	DefaultRTSPReadersPerAddress  = 10
	DefaultRTSPReadersPerNode     = 200
)

// SetDefaults fills every cap (before the YAML is decoded: a 0 there wins).
func (l *RTSPLimits) SetDefaults() {
	*l = RTSPLimits{
		SessionsPerAddress: DefaultRTSPSessionsPerAddress,
		SessionsPerNode:    DefaultRTSPSessionsPerNode,
		ReadersPerAddress:  DefaultRTSPReadersPerAddress,
		ReadersPerNode:     DefaultRTSPReadersPerNode,
	}
}

// Validate reports the first negative cap.
func (l RTSPLimits) Validate() error {
	for key, v := range map[string]int{
		"sessions_per_address": l.SessionsPerAddress, "sessions_per_node": l.SessionsPerNode,
		"readers_per_address": l.ReadersPerAddress, "readers_per_node": l.ReadersPerNode,
	} {
		if v < 0 {
			return fmt.Errorf("rtsp.limits.%s: must not be negative (0 = no limit), got %d", key, v)
		}
	}
	return nil
}

// rtspCaps counts RTSP sessions and readers by client address.
type rtspCaps struct {
	cfg     RTSPLimits
	metrics *metrics

	mu       sync.Mutex
	sessions map[*gortsplib.ServerSession]*rtspEntry
	perAddr  map[string]*rtspCount
	nSess    int
	nReaders int
}

type rtspCount struct{ sessions, readers int }

// rtspEntry is one admitted session.
type rtspEntry struct {
	key    string // client address
	reader bool
}

func newRTSPCaps(cfg RTSPLimits, m *metrics) *rtspCaps {
	return &rtspCaps{cfg: cfg, metrics: m, sessions: map[*gortsplib.ServerSession]*rtspEntry{}, perAddr: map[string]*rtspCount{}}
}

// rtspAddrKey is the per-address key of a connection.
func rtspAddrKey(c *gortsplib.ServerConn) string { return clientAddrKey(c.NetConn().RemoteAddr()) }

// open admits a new session (its first ANNOUNCE or SETUP); a session
// already admitted passes. The refusal is the response to send.
func (c *rtspCaps) open(ss *gortsplib.ServerSession, conn *gortsplib.ServerConn) *base.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.sessions[ss]; ok {
		return nil
	}
	key := rtspAddrKey(conn)
	n := c.perAddr[key]
	if n == nil {
		n = &rtspCount{}
	}
	switch {
	case over(n.sessions, c.cfg.SessionsPerAddress):
		return c.refuse(ss, refuseRTSPSessionsAddress)
	case over(c.nSess, c.cfg.SessionsPerNode):
		return c.refuse(ss, refuseRTSPSessionsNode)
	}
	c.perAddr[key] = n
	n.sessions++
	c.nSess++
	c.sessions[ss] = &rtspEntry{key: key}
	return nil
}

// read admits an admitted session as a reader (its first play SETUP).
func (c *rtspCaps) read(ss *gortsplib.ServerSession) *base.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.sessions[ss]
	if !ok || e.reader {
		return nil
	}
	n := c.perAddr[e.key]
	switch {
	case over(n.readers, c.cfg.ReadersPerAddress):
		return c.refuse(ss, refuseRTSPReadersAddress)
	case over(c.nReaders, c.cfg.ReadersPerNode):
		return c.refuse(ss, refuseRTSPReadersNode)
	}
	n.readers++
	c.nReaders++
	e.reader = true
	return nil
}

// close forgets a session.
func (c *rtspCaps) close(ss *gortsplib.ServerSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.sessions[ss]
	if !ok {
		return
	}
	delete(c.sessions, ss)
	n := c.perAddr[e.key]
	n.sessions--
	c.nSess--
	if e.reader {
		n.readers--
		c.nReaders--
	}
	if *n == (rtspCount{}) {
		delete(c.perAddr, e.key)
	}
}

// refuse counts the refusal and closes the session once the 503 is sent.
func (c *rtspCaps) refuse(ss *gortsplib.ServerSession, reason string) *base.Response {
	c.metrics.refused(reason)
	ss.Close() // only cancels: the session ends after this response
	return rtspStatus(base.StatusServiceUnavailable, "Service Unavailable: too many RTSP sessions ("+reason+")")
}

func over(n, limit int) bool { return limit > 0 && n >= limit }
