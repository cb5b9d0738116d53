package room

import (
	"context"
	"net"
	"net/http"
	"net/netip"
)

// The client's address, as every per-address limit counts it. The HTTP
// layer resolves it (the TCP peer, or the address a trusted proxy reports
// in X-Forwarded-For or the PROXY protocol: web.ClientAddrs) and attaches
// it to the request's context; limits key on ClientKey.

type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the client's resolved address.
func WithClientAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, a.Unmap().WithZone(""))
}

// ClientAddr is the client's address: the one the HTTP layer resolved, else
// the TCP peer of r (invalid if RemoteAddr is not an IP address).
func ClientAddr(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(clientAddrKey{}).(netip.Addr); ok && a.IsValid() {
		return a
	}
	return PeerAddr(r.RemoteAddr)
}

// PeerAddr parses a RemoteAddr ("ip:port", or a bare ip).
func PeerAddr(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap().WithZone("")
}

// AddrKey is what per-address limits count under: an IPv4 address as it is,
// an IPv6 address by its /64 (one subscriber or LAN normally holds a whole
// /64 and could otherwise take a fresh address for every connection).
func AddrKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ClientKey is AddrKey of r's client address; a RemoteAddr that is not an
// IP address (a test's pipe) is its own key.
func ClientKey(r *http.Request) string {
	if a := ClientAddr(r); a.IsValid() {
		return AddrKey(a)
	}
	return r.RemoteAddr
}
