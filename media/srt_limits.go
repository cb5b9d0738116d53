package media

import (
	"net"
	"net/netip"
	"sync"
)

// srtCaps counts SRT connections, from the handshake being authorized to
// the publisher's end, per client address (IPv6 by /64) and per node.
type srtCaps struct {
	perAddr, perNode int

	mu    sync.Mutex
	addrs map[string]int
	n     int
}

func newSRTCaps(cfg SRTConfig) *srtCaps {
	return &srtCaps{perAddr: cfg.ConnectionsPerAddress, perNode: cfg.ConnectionsPerNode, addrs: map[string]int{}}
}

// srtAddrKey is the per-address key of a peer: its IP, IPv6 by /64.
func srtAddrKey(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// open admits one more connection from key; the reason names the cap hit.
func (c *srtCaps) open(key string) (ok bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case over(c.addrs[key], c.perAddr):
		return false, refuseSRTAddress
	case over(c.n, c.perNode):
		return false, refuseSRTNode
	}
	c.addrs[key]++
	c.n++
	return true, ""
}

func (c *srtCaps) close(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addrs[key]--; c.addrs[key] <= 0 {
		delete(c.addrs, key)
	}
	c.n--
}

// Refusal reasons (the liveroom_refusals_total label).
const (
	refuseSRTAddress = "srt_connections_per_address"
	refuseSRTNode    = "srt_connections_per_node"
)
