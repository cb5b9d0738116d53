package media

import (
	"net"
	"net/netip"
	"sync"
)

// connCaps counts an ingest listener's open connections (RTMP, SRT) per
// client address and per node, and refuses one past either cap
// (0 = no limit). The refusal reasons are the listener's own, as counted
// in liveroom_media_admissions_refused_total.
type connCaps struct {
	perAddr, perNode         int
	addrRefusal, nodeRefusal string

	mu    sync.Mutex
	addrs map[string]int
	n     int
}

func newConnCaps(perAddr, perNode int, addrRefusal, nodeRefusal string) *connCaps {
	return &connCaps{perAddr: perAddr, perNode: perNode, addrRefusal: addrRefusal, nodeRefusal: nodeRefusal, addrs: map[string]int{}}
}

// open admits one more connection from key (see clientAddrKey), or returns
// the reason of the cap that refuses it; "" = admitted, and close(key)
// must follow.
func (c *connCaps) open(key string) (refusal string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case over(c.addrs[key], c.perAddr):
		return c.addrRefusal
	case over(c.n, c.perNode):
		return c.nodeRefusal
	}
	c.addrs[key]++
	c.n++
	return ""
}

// close gives back the place open took.
func (c *connCaps) close(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addrs[key]--; c.addrs[key] <= 0 {
		delete(c.addrs, key)
	}
	c.n--
}

// clientAddrKey is the per-address key of a peer: its IP, IPv6 grouped by
// /64 (one subscriber's prefix), as the HTTP side counts clients.
func clientAddrKey(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		if h, _, err := net.SplitHostPort(a.String()); err == nil {
			return h
		}
		return a.String()
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
