//go:build !linux

package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// hostAddrs lists this host's interface addresses. Without netlink,
// tentative addresses are not told apart: binding them fails, which is
// logged once and retried at the next refresh.
func hostAddrs() ([]hostAddr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("interfaces: %w", err)
	}
	var out []hostAddr
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			out = append(out, hostAddr{Addr: ip.Unmap(), Iface: ifc.Name,
				Up: ifc.Flags&net.FlagUp != 0, Loopback: ifc.Flags&net.FlagLoopback != 0})
		}
	}
	return out, nil
}

type addrWatch struct{}

// watchAddrs: no change notifications here; webrtc.address_refresh polls.
func watchAddrs(func()) (*addrWatch, error) {
	return nil, errors.New("no address change notifications on this system")
}

func (*addrWatch) close() {}
