package web

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"

	"liveroom/room"
)

// FuzzXForwardedFor: whatever a client writes into X-Forwarded-For, the
// resolved address is the peer (an untrusted one always) or an address
// that header names, and it has a key.
func FuzzXForwardedFor(f *testing.F) {
	trusted, _ := ParseTrustedProxies([]string{"127.0.0.1", "10.0.0.0/8", "fd00::/8"})
	c := NewClientAddrs(trusted)
	f.Add("127.0.0.1:5000", "203.0.113.9")
	f.Add("10.0.0.1:1", "6.6.6.6, [2001:db8::1]:443, 10.2.2.2")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		got := c.Resolve(remote, []string{xff})
		peer := room.PeerAddr(remote)
		if !peer.IsValid() {
			if got.IsValid() {
				t.Fatalf("no peer address, yet resolved %s", got)
			}
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("resolved %v", got)
		}
		if !c.Trusted(peer) && got != peer {
			t.Fatalf("untrusted peer %s, resolved %s from %q", peer, got, xff)
		}
		if got != peer {
			named := false
			for _, e := range strings.Split(xff, ",") {
				if a, ok := parseForwardedAddr(strings.TrimSpace(e)); ok && a == got {
					named = true
				}
			}
			if !named {
				t.Fatalf("resolved %s, which %q does not name", got, xff)
			}
		}
		key := room.AddrKey(got)
		if _, err := netip.ParseAddr(key); err != nil {
			if _, err := netip.ParsePrefix(key); err != nil {
				t.Fatalf("key %q of %s", key, got)
			}
		}
	})
}

// FuzzProxyHeader: any bytes at the start of a trusted proxy's connection
// are either no header (nothing consumed), a header (consumed, the bytes
// after it left intact for HTTP), or an error; never a panic.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 256)
		src, err := readProxyHeader(br)
		rest, _ := io.ReadAll(br)
		consumed := len(data) - len(rest)
		isV1 := bytes.HasPrefix(data, proxyV1Prefix)
		isV2 := bytes.HasPrefix(data, proxyV2Sig)
		switch {
		case err != nil:
			if !isV1 && !isV2 && len(data) > 0 {
				t.Fatalf("error %v on bytes that start no header", err)
			}
		case !isV1 && !isV2:
			if consumed != 0 || src.IsValid() {
				t.Fatalf("no header, yet consumed %d and read %v", consumed, src)
			}
		case isV1 && (consumed > proxyV1Max || data[consumed-1] != '\n'):
			t.Fatalf("v1 header consumed %d bytes", consumed)
		case isV2 && consumed < 16:
			t.Fatalf("v2 header consumed %d bytes", consumed)
		}
		if src.IsValid() && (src.Addr().Is4In6() || src.Addr().Zone() != "") {
			t.Fatalf("source %v", src)
		}
	})
}
