package web

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProxyListener accepts connections that a trusted proxy (haproxy with
// send-proxy or send-proxy-v2) opens with a PROXY protocol header, v1 or
// v2: the header's source address becomes the connection's RemoteAddr, so
// the HTTP layer and every per-address limit see the client. The header is
// read only from trusted peers, on the connection's own goroutine (never in
// Accept), and must arrive within timeout or the connection is dropped. A
// trusted peer may also connect without a header (a health check); a
// LOCAL or UNKNOWN header keeps the peer's address. Other peers are passed
// through untouched: a PROXY header from them is just a bad HTTP request.
// (http.Server reads RemoteAddr first thing on the connection's goroutine;
// a ConnState or ConnContext hook that called it would read the header on
// the accept loop instead.)
func ProxyListener(ln net.Listener, addrs *ClientAddrs, timeout time.Duration) net.Listener {
	return &proxyListener{Listener: ln, addrs: addrs, timeout: timeout}
}

type proxyListener struct {
	net.Listener
	addrs   *ClientAddrs
	timeout time.Duration
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	peer := addrOf(c.RemoteAddr())
	if !peer.IsValid() || !l.addrs.Trusted(peer) {
		return c, nil
	}
	return &proxyConn{Conn: c, timeout: l.timeout}, nil
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// proxyConn reads the PROXY header on first use (RemoteAddr or Read).
type proxyConn struct {
	net.Conn
	timeout time.Duration

	once   sync.Once
	br     *bufio.Reader // bytes read past the header; nil once drained
	remote net.Addr
	err    error
}

func (c *proxyConn) handshake() {
	c.once.Do(func() {
		c.remote = c.Conn.RemoteAddr()
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
		c.br = bufio.NewReaderSize(c.Conn, 256)
		src, err := readProxyHeader(c.br)
		_ = c.Conn.SetReadDeadline(time.Time{})
		if err != nil {
			c.err = fmt.Errorf("proxy protocol from %s: %w", c.remote, err)
			return
		}
		if src.IsValid() {
			c.remote = net.TCPAddrFromAddrPort(src)
		}
	})
}

func (c *proxyConn) RemoteAddr() net.Addr {
	c.handshake()
	return c.remote
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.handshake()
	if c.err != nil {
		return 0, c.err
	}
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil
	}
	return c.Conn.Read(p)
}

var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const proxyV1Max = 107 // the longest v1 line, CRLF included

// readProxyHeader consumes a PROXY protocol header, v1 or v2, from the start
// of br. It returns the source address it names; an invalid AddrPort when
// there is no header, or the header says LOCAL or UNKNOWN (keep the peer).
// Anything malformed is an error: the connection cannot be read as HTTP.
func readProxyHeader(br *bufio.Reader) (netip.AddrPort, error) {
	first, err := br.Peek(1)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch first[0] {
	case 'P':
		if b, err := br.Peek(len(proxyV1Prefix)); err == nil && bytes.Equal(b, proxyV1Prefix) {
			return readProxyV1(br)
		}
	case '\r':
		if b, err := br.Peek(len(proxyV2Sig)); err == nil && bytes.Equal(b, proxyV2Sig) {
			return readProxyV2(br)
		}
	}
	return netip.AddrPort{}, nil
}

func readProxyV1(br *bufio.Reader) (netip.AddrPort, error) {
	line := make([]byte, 0, proxyV1Max)
	for {
		b, err := br.ReadByte()
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("v1 header cut short: %w", err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
		if len(line) == proxyV1Max {
			return netip.AddrPort{}, errors.New("v1 header longer than 107 bytes")
		}
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return netip.AddrPort{}, errors.New("v1 header not ended by CRLF")
	}
	f := strings.Split(s, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return netip.AddrPort{}, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return netip.AddrPort{}, fmt.Errorf("v1 header %q: want PROXY TCP4|TCP6 src dst sport dport", s)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sport, err3 := parsePort(f[4])
	_, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return netip.AddrPort{}, fmt.Errorf("v1 header %q: %w", s, err)
	}
	v4 := f[1] == "TCP4"
	if src.Zone() != "" || dst.Zone() != "" || src.Is4() != v4 || dst.Is4() != v4 {
		return netip.AddrPort{}, fmt.Errorf("v1 header %q: addresses do not match %s", s, f[1])
	}
	return netip.AddrPortFrom(src.Unmap(), sport), nil
}

// parsePort reads a decimal port without sign or leading zeros.
func parsePort(s string) (uint16, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("bad port %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func readProxyV2(br *bufio.Reader) (netip.AddrPort, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("v2 header cut short: %w", err)
	}
	verCmd, fam, n := hdr[12], hdr[13], int(binary.BigEndian.Uint16(hdr[14:]))
	if verCmd>>4 != 2 {
		return netip.AddrPort{}, fmt.Errorf("v2 header: version %d", verCmd>>4)
	}
	cmd := verCmd & 0xf
	if cmd > 1 {
		return netip.AddrPort{}, fmt.Errorf("v2 header: command %d", cmd)
	}
	var need int
	switch fam >> 4 {
	case 1: // AF_INET
		need = 12
	case 2: // AF_INET6
		need = 36
	}
	if cmd == 0 || need == 0 || fam&0xf != 1 { // LOCAL, AF_UNSPEC/AF_UNIX, or not STREAM
		if _, err := br.Discard(n); err != nil {
			return netip.AddrPort{}, fmt.Errorf("v2 header cut short: %w", err)
		}
		return netip.AddrPort{}, nil
	}
	if n < need {
		return netip.AddrPort{}, fmt.Errorf("v2 header: %d address bytes for family %#x, want %d", n, fam, need)
	}
	var buf [36]byte
	if _, err := io.ReadFull(br, buf[:need]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("v2 header cut short: %w", err)
	}
	if _, err := br.Discard(n - need); err != nil { // TLVs: not used
		return netip.AddrPort{}, fmt.Errorf("v2 header cut short: %w", err)
	}
	var src netip.Addr
	var port uint16
	if need == 12 {
		src = netip.AddrFrom4([4]byte(buf[0:4]))
		port = binary.BigEndian.Uint16(buf[8:10])
	} else {
		src = netip.AddrFrom16([16]byte(buf[0:16]))
		port = binary.BigEndian.Uint16(buf[32:34])
	}
	return netip.AddrPortFrom(src.Unmap(), port), nil
}
