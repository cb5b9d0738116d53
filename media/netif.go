package media

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// hostAddr is one address of one of this host's interfaces, as the kernel
// reports it.
type hostAddr struct {
	Addr     netip.Addr // no zone
	Iface    string
	Up       bool // the interface is administratively up
	Loopback bool // the interface is a loopback one
	// Tentative: an IPv6 address whose duplicate-address detection has not
	// finished (or failed); it cannot be bound yet. A link whose peer is
	// down keeps its addresses tentative indefinitely.
	Tentative bool
}

// addrFilter decides which interface addresses carry media: webrtc.interfaces
// and webrtc.addresses (both empty = every address), and always without
// link-local and tentative addresses. Loopback is used only when an
// allow-list names it (an interface listed by its exact name, or a loopback
// address or network).
type addrFilter struct {
	ifaces   []string       // exact names or path.Match patterns
	prefixes []netip.Prefix // single addresses are /32 or /128
}

func newAddrFilter(cfg Config) (addrFilter, error) {
	f := addrFilter{ifaces: cfg.Interfaces}
	for i, s := range cfg.Addresses {
		p, err := parseAddrOrPrefix(s)
		if err != nil {
			return addrFilter{}, fmt.Errorf("webrtc.addresses[%d]: %w", i, err)
		}
		f.prefixes = append(f.prefixes, p)
	}
	for i, s := range cfg.Interfaces {
		if _, err := path.Match(s, ""); err != nil || s == "" {
			return addrFilter{}, fmt.Errorf("webrtc.interfaces[%d]: %q is not an interface name or pattern", i, s)
		}
	}
	return f, nil
}

// parseAddrOrPrefix reads "10.0.0.5", "fd00::1" or "10.0.0.0/8".
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR network", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR network", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// skip says why a is not used for media ("" = use it).
func (f addrFilter) skip(a hostAddr) string {
	ip := a.Addr
	switch {
	case !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast():
		return "not a unicast address"
	case !a.Up:
		return "interface down"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case a.Tentative:
		return "tentative (duplicate-address detection not finished)"
	case (a.Loopback || ip.IsLoopback()) && !f.namesLoopback(a):
		return "loopback"
	case !f.ifaceAllowed(a.Iface):
		return "not in webrtc.interfaces"
	case !f.addrAllowed(ip):
		return "not in webrtc.addresses"
	}
	return ""
}

func (f addrFilter) ifaceAllowed(name string) bool {
	if len(f.ifaces) == 0 {
		return true
	}
	for _, p := range f.ifaces {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func (f addrFilter) addrAllowed(ip netip.Addr) bool {
	if len(f.prefixes) == 0 {
		return true
	}
	for _, p := range f.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// namesLoopback: a loopback address is used only when an allow-list names
// it explicitly, not through a pattern or a wide network.
func (f addrFilter) namesLoopback(a hostAddr) bool {
	for _, n := range f.ifaces {
		if n == a.Iface {
			return f.addrAllowed(a.Addr)
		}
	}
	for _, p := range f.prefixes {
		if p.Addr().IsLoopback() && p.Contains(a.Addr) {
			return f.ifaceAllowed(a.Iface)
		}
	}
	return false
}
