package web

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"liveroom/room"
)

// proxyServer is a real HTTP server behind ProxyListener, trusting
// 127.0.0.1 only; its handler answers the client key and RemoteAddr.
func proxyServer(t *testing.T, timeout time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := ParseTrustedProxies([]string{"127.0.0.1"})
	addrs := NewClientAddrs(trusted)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = addrs.annotate(r)
		io.WriteString(w, room.ClientKey(r)+" "+r.RemoteAddr)
	})}
	go srv.Serve(ProxyListener(ln, addrs, timeout))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends prefix and a GET on c and returns the status and body ("" and
// the error if the connection ends first).
func get(t *testing.T, c net.Conn, prefix []byte, xff string) (int, string, error) {
	t.Helper()
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	if xff != "" {
		req += "X-Forwarded-For: " + xff + "\r\n"
	}
	if _, err := c.Write(append(prefix, req+"\r\n"...)); err != nil {
		return 0, "", err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func proxyV2(cmd byte, src, dst netip.AddrPort, tlvs []byte) []byte {
	var b bytes.Buffer
	b.Write(proxyV2Sig)
	b.WriteByte(0x20 | cmd)
	var addrs []byte
	if src.Addr().Is4() {
		b.WriteByte(0x11)
		s, d := src.Addr().As4(), dst.Addr().As4()
		addrs = append(append(addrs, s[:]...), d[:]...)
	} else {
		b.WriteByte(0x21)
		s, d := src.Addr().As16(), dst.Addr().As16()
		addrs = append(append(addrs, s[:]...), d[:]...)
	}
	addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	addrs = append(addrs, tlvs...)
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(addrs))))
	b.Write(addrs)
	return b.Bytes()
}

func TestProxyListener(t *testing.T) {
	addr := proxyServer(t, 300*time.Millisecond)
	v4 := netip.MustParseAddrPort("203.0.113.9:40000")
	v6 := netip.MustParseAddrPort("[2001:db8:1:2::7]:40000")
	dst4 := netip.MustParseAddrPort("192.0.2.1:443")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	for _, tc := range []struct {
		name, src string
		prefix    []byte
		xff       string
		want      string // body prefix
		status    int    // 0: a malformed header, answered 400 and closed
	}{
		{"v1 tcp4", "127.0.0.1", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\n"), "", "203.0.113.9 203.0.113.9:40000", 200},
		{"v1 tcp6", "127.0.0.1", []byte("PROXY TCP6 2001:db8:1:2::7 2001:db8::1 40000 443\r\n"), "", "2001:db8:1:2::/64 [2001:db8:1:2::7]:40000", 200},
		{"v1 unknown keeps the peer", "127.0.0.1", []byte("PROXY UNKNOWN\r\n"), "", "127.0.0.1 127.0.0.1:", 200},
		{"v2 tcp4 with TLVs", "127.0.0.1", proxyV2(1, v4, dst4, []byte{0x04, 0, 2, 'h', 'i'}), "", "203.0.113.9 203.0.113.9:40000", 200},
		{"v2 tcp6", "127.0.0.1", proxyV2(1, v6, dst6, nil), "", "2001:db8:1:2::/64 [2001:db8:1:2::7]:40000", 200},
		{"v2 local keeps the peer", "127.0.0.1", proxyV2(0, v4, dst4, nil), "", "127.0.0.1 127.0.0.1:", 200},
		{"trusted peer without a header", "127.0.0.1", nil, "", "127.0.0.1 127.0.0.1:", 200},
		// The proxy's client is not a trusted proxy: its XFF is not believed.
		{"v1 then a spoofed XFF", "127.0.0.1", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\n"), "6.6.6.6", "203.0.113.9 203.0.113.9:40000", 200},
		{"untrusted peer's header is not read", "127.0.0.2", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\n"), "", "", 400},
		{"untrusted peer", "127.0.0.2", nil, "", "127.0.0.2 127.0.0.2:", 200},
		{"v1 malformed", "127.0.0.1", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000\r\n"), "", "", 0},
		{"v1 family mismatch", "127.0.0.1", []byte("PROXY TCP4 2001:db8::1 192.0.2.1 40000 443\r\n"), "", "", 0},
		{"v1 too long", "127.0.0.1", []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"), "", "", 0},
		{"v2 bad version", "127.0.0.1", append(append([]byte{}, proxyV2Sig...), 0x31, 0x11, 0, 0), "", "", 0},
		{"v2 short addresses", "127.0.0.1", append(append([]byte{}, proxyV2Sig...), 0x21, 0x21, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), "", "", 0},
	} {
		c := dialFrom(t, tc.src, addr)
		status, body, err := get(t, c, tc.prefix, tc.xff)
		switch {
		case tc.status == 0:
			// net/http answers an unreadable connection 400 and closes it.
			if err == nil && status != http.StatusBadRequest {
				t.Errorf("%s: answered %d %q, want 400 or the connection dropped", tc.name, status, body)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Errorf("%s: connection left open", tc.name)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case status != tc.status || !strings.HasPrefix(body, tc.want):
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, body, tc.status, tc.want)
		}
	}
}

// A trusted peer that never finishes its header is dropped after the
// header timeout, and meanwhile other connections are served: the header
// is not read in Accept.
func TestProxyListenerHeaderTimeout(t *testing.T) {
	addr := proxyServer(t, 300*time.Millisecond)
	stalled := dialFrom(t, "127.0.0.1", addr)
	if _, err := stalled.Write([]byte("PROXY TCP4 203.0.1")); err != nil {
		t.Fatal(err)
	}
	other := dialFrom(t, "127.0.0.1", addr)
	if status, body, err := get(t, other, []byte("PROXY TCP4 198.51.100.1 192.0.2.1 1 2\r\n"), ""); err != nil || status != 200 || !strings.HasPrefix(body, "198.51.100.1 ") {
		t.Fatalf("a second client behind a stalled one: %d %q %v", status, body, err)
	}
	start := time.Now()
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(stalled) // until the server closes it
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a stalled PROXY header's connection open for 10s (timeout 300ms)")
	}
	if len(got) > 0 && !bytes.Contains(got, []byte(" 400 Bad Request")) {
		t.Errorf("stalled header answered %q", got)
	}
	t.Logf("stalled header dropped after %s", time.Since(start))
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
