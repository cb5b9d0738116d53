package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

func TestClientAddrsResolve(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"127.0.0.1", "10.0.0.0/8", "fd00::/8", "::ffff:192.0.2.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClientAddrs(trusted)
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "198.51.100.7:5000", nil, "198.51.100.7"},
		{"untrusted peer's XFF ignored", "198.51.100.7:5000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"trusted peer, no XFF", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"trusted peer", "127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"client-written entries ignored", "127.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.1.1:5000", []string{"6.6.6.6, 203.0.113.9, 10.2.2.2", "10.3.3.3"}, "203.0.113.9"},
		{"all trusted: left-most", "10.1.1.1:5000", []string{"10.9.9.9,10.2.2.2"}, "10.9.9.9"},
		{"ports and brackets", "127.0.0.1:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"v4 with port", "127.0.0.1:5000", []string{"203.0.113.9:1234"}, "203.0.113.9"},
		{"bracketed v6", "127.0.0.1:5000", []string{"[2001:db8::2]"}, "2001:db8::2"},
		{"mapped v4", "127.0.0.1:5000", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"zone dropped", "127.0.0.1:5000", []string{"fe80::1%eth0"}, "fe80::1"},
		{"empty elements", "127.0.0.1:5000", []string{" , 203.0.113.9 ,, "}, "203.0.113.9"},
		{"garbage stops at the last readable hop", "10.1.1.1:5000", []string{"203.0.113.9, unknown, 10.2.2.2"}, "10.2.2.2"},
		{"garbage right after the peer", "127.0.0.1:5000", []string{"_hidden"}, "127.0.0.1"},
		{"v6 trusted peer", "[fd00::5]:443", []string{"2001:db8:1:2::7"}, "2001:db8:1:2::7"},
		{"mapped trusted prefix", "[::ffff:192.0.2.10]:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"not an IP peer", "pipe", []string{"203.0.113.9"}, "invalid IP"},
	} {
		got := c.Resolve(tc.remote, tc.xff)
		if got.String() != tc.want {
			t.Errorf("%s: Resolve(%q, %q) = %s, want %s", tc.name, tc.remote, tc.xff, got, tc.want)
		}
	}
	if NewClientAddrs(nil).Resolve("127.0.0.1:1", []string{"203.0.113.9"}).String() != "127.0.0.1" {
		t.Error("no trusted proxies: XFF believed")
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":            "203.0.113.9",
		"::ffff:203.0.113.9":     "203.0.113.9",
		"2001:db8:1:2::1":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9":   "2001:db8:1:2::/64",
		"2001:db8:1:3::1":        "2001:db8:1:3::/64",
		"fe80::1%eth0":           "fe80::/64",
		"2001:db8:aaaa:bbbb:c::": "2001:db8:aaaa:bbbb::/64",
	} {
		if got := room.AddrKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("AddrKey(%s) = %s, want %s", in, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8:1:2::1]:443"
	if got := room.ClientKey(r); got != "2001:db8:1:2::/64" {
		t.Errorf("ClientKey of a v6 peer = %s", got)
	}
	r = r.WithContext(room.WithClientAddr(r.Context(), netip.MustParseAddr("203.0.113.9")))
	if got := room.ClientKey(r); got != "203.0.113.9" {
		t.Errorf("ClientKey with a resolved address = %s", got)
	}
}

func TestTrustedProxiesConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TrustedProxies: []string{"10.0.0.0/8", "127.0.0.1", "::1"}}, ""},
		{Config{TrustedProxies: []string{"10.0.0.0/33"}}, "http.trusted_proxies"},
		{Config{TrustedProxies: []string{"proxy.local"}}, "http.trusted_proxies"},
		{Config{TrustedProxies: []string{"fe80::1%eth0"}}, "http.trusted_proxies"},
		{Config{ProxyProtocol: true}, "http.proxy_protocol"},
		{Config{BodyTimeout: time.Millisecond}, "http.body_timeout"},
		{Config{ProxyHeaderTimeout: time.Hour}, "http.proxy_header_timeout"},
	} {
		tc.cfg.Listen = ":8080"
		tc.cfg.SetDefaults()
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%+v: Validate = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// The hub's per-address WebSocket limit counts the resolved client: behind
// a trusted proxy (127.0.0.1) the X-Forwarded-For address, IPv6 by /64; a
// peer that is not trusted (127.0.0.2) by its own address, whatever it
// claims.
func TestWebSocketLimitCountsResolvedClient(t *testing.T) {
	auth, err := room.NewAuth(room.AuthConfig{JWTSecret: "test-secret-0123456789abcdef", AdminKey: testAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	rooms, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := room.NewRoom(room.Room{ID: "demo", Title: "Demo"}, time.Now())
	if _, err := rooms.Create(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	hcfg := room.DefaultHubConfig()
	hcfg.MaxConnsPerIP = 1
	hub, err := room.NewHub(hcfg, room.HubDeps{Auth: auth, Rooms: rooms, Bus: room.NewMemoryBus(64)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	cfg := Config{Listen: "127.0.0.1:0", TrustedProxies: []string{"127.0.0.1/32"}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(cfg, Deps{Auth: auth, Rooms: rooms, Hub: hub}))
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/demo"

	// dial opens a WebSocket from source address src with X-Forwarded-For
	// xff and returns the first event's type (and error code).
	dial := func(src, xff string) (string, *websocket.Conn) {
		t.Helper()
		d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext, HandshakeTimeout: 5 * time.Second}
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		ws, _, err := d.Dial(wsURL, h)
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		t.Cleanup(func() { ws.Close() })
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("from %s xff %q: %v", src, xff, err)
		}
		var ev struct {
			Type string `json:"type"`
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &ev)
		if ev.Type == "error" {
			return "error:" + ev.Code, ws
		}
		return ev.Type, ws
	}
	refused := "error:" + room.CodeTooManyConns
	for _, step := range []struct{ src, xff, want string }{
		{"127.0.0.1", "198.51.100.1", "welcome"},
		{"127.0.0.1", "198.51.100.2", "welcome"},
		{"127.0.0.1", "6.6.6.6, 198.51.100.1", refused}, // the client is still .1
		{"127.0.0.1", "2001:db8:1:2::1", "welcome"},
		{"127.0.0.1", "2001:db8:1:2:ffff::9", refused}, // same /64
		{"127.0.0.1", "2001:db8:1:3::1", "welcome"},
		{"127.0.0.2", "198.51.100.3", "welcome"},
		{"127.0.0.2", "198.51.100.4", refused}, // not a trusted proxy: counted as 127.0.0.2
	} {
		if got, _ := dial(step.src, step.xff); got != step.want {
			t.Errorf("from %s with X-Forwarded-For %q: %s, want %s", step.src, step.xff, got, step.want)
		}
	}
}

// X-Forwarded-Proto is believed from a trusted proxy only: anyone else
// could make the ingest URLs the server hands out say https.
func TestForwardedHTTPSTrustedOnly(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClientAddrs(trusted)
	for _, tc := range []struct {
		remote, proto string
		want          bool
	}{
		{"10.1.2.3:5000", "https", true},
		{"10.1.2.3:5000", "HTTPS", true},
		{"10.1.2.3:5000", "http", false},
		{"10.1.2.3:5000", "", false},
		{"198.51.100.7:5000", "https", false},
	} {
		r := httptest.NewRequest("GET", "/api/v1/rooms/r1", nil)
		r.RemoteAddr = tc.remote
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if got := c.forwardedHTTPS(r); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-Proto %q: got %v, want %v", tc.remote, tc.proto, got, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-Proto", "https")
	if NewClientAddrs(nil).forwardedHTTPS(r) {
		t.Error("no trusted proxies: X-Forwarded-Proto believed")
	}
}
