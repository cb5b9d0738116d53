package web

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"liveroom/room"
)

// ClientAddrs resolves a request's client address: the TCP peer, unless the
// peer is a trusted proxy (http.trusted_proxies); then the right-most
// X-Forwarded-For entry that is not itself a trusted proxy. Entries left of
// it were written by the client and are never believed. (A connection
// that came through the PROXY protocol already has the client as its peer:
// ProxyListener.)
type ClientAddrs struct {
	trusted []netip.Prefix
}

// ParseTrustedProxies reads http.trusted_proxies: CIDRs (10.0.0.0/8,
// fd00::/8) or single addresses.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// NewClientAddrs trusts the given proxies (see ParseTrustedProxies).
func NewClientAddrs(trusted []netip.Prefix) *ClientAddrs {
	return &ClientAddrs{trusted: trusted}
}

// Trusted reports whether a is a trusted proxy.
func (c *ClientAddrs) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address of a request from remoteAddr (its TCP
// peer) and its X-Forwarded-For header lines (in order). It is invalid only
// when remoteAddr is not an IP address.
func (c *ClientAddrs) Resolve(remoteAddr string, xff []string) netip.Addr {
	addr := room.PeerAddr(remoteAddr)
	if !addr.IsValid() || !c.Trusted(addr) {
		return addr
	}
	// Right to left: each trusted hop appended the address it saw.
	for i := len(xff) - 1; i >= 0; i-- {
		h := xff[i]
		for h != "" {
			j := strings.LastIndexByte(h, ',')
			entry := strings.TrimSpace(h[j+1:])
			h = h[:max(j, 0)]
			if entry == "" {
				continue
			}
			a, ok := parseForwardedAddr(entry)
			if !ok {
				// Unreadable, so not written by a proxy we trust: the
				// last hop we could read is the client.
				return addr
			}
			addr = a
			if !c.Trusted(a) {
				return a
			}
		}
	}
	// Every hop was a trusted proxy: the left-most one is the client.
	return addr
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IP address, with or
// without a port, IPv6 optionally in brackets.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// annotate attaches r's resolved client address to its context, where
// every per-address limit reads it (room.ClientKey).
func (c *ClientAddrs) annotate(r *http.Request) *http.Request {
	if len(c.trusted) == 0 {
		return r // the peer it is; room.ClientKey reads RemoteAddr itself
	}
	a := c.Resolve(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
	if !a.IsValid() {
		return r
	}
	return r.WithContext(room.WithClientAddr(r.Context(), a))
}

// forwardedHTTPS reports whether a trusted proxy (http.trusted_proxies, the
// request's TCP peer) says the client connected over HTTPS. The header of
// any other peer is the client's word and is ignored.
func (c *ClientAddrs) forwardedHTTPS(r *http.Request) bool {
	return c.Trusted(room.PeerAddr(r.RemoteAddr)) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
