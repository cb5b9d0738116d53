package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// ErrNoMediaAddress is Ready's answer when WebRTC media has no usable
// interface address: the node runs, but no viewer could connect.
var ErrNoMediaAddress = errors.New("webrtc: no usable interface address for media (see webrtc.interfaces, webrtc.addresses)")

// UsableAddrs returns the addresses WebRTC media is served on now, each with
// the UDP port: with webrtc.listen_ip the one bound address, otherwise the
// usable interface addresses of the moment.
func (s *SFU) UsableAddrs() []netip.AddrPort {
	if s.net.addrs == nil {
		if ua, ok := s.net.udpAddr.(*net.UDPAddr); ok {
			return []netip.AddrPort{ua.AddrPort()}
		}
		return nil
	}
	port := uint16(s.net.addrs.port)
	var out []netip.AddrPort
	for _, a := range s.net.addrs.Usable() {
		out = append(out, netip.AddrPortFrom(a, port))
	}
	return out
}

// Ready reports whether the node can take WebRTC sessions: nil, or
// ErrNoMediaAddress when no interface address is usable (all down, still
// tentative, filtered out or unbindable). It has the shape of web.Deps.Ready
// for cmd to compose into /readyz.
func (s *SFU) Ready(context.Context) error {
	if len(s.UsableAddrs()) == 0 {
		return ErrNoMediaAddress
	}
	return nil
}
