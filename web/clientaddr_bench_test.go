package web

import (
	"bufio"
	"bytes"
	"net/http/httptest"
	"testing"
)

// What the client address model costs a request: go test -bench ClientAddr -run X ./web/
func BenchmarkClientAddrAnnotate(b *testing.B) {
	trusted, _ := ParseTrustedProxies([]string{"10.0.0.0/8", "127.0.0.1"})
	c := NewClientAddrs(trusted)
	for _, tc := range []struct{ name, remote, xff string }{
		{"untrusted peer", "198.51.100.7:5000", "203.0.113.9"},
		{"behind two proxies", "10.1.1.1:5000", "6.6.6.6, 203.0.113.9, 10.2.2.2"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/ws/demo", nil)
			r.RemoteAddr = tc.remote
			r.Header.Set("X-Forwarded-For", tc.xff)
			b.ReportAllocs()
			for b.Loop() {
				_ = c.annotate(r)
			}
		})
	}
}

func BenchmarkClientAddrProxyHeader(b *testing.B) {
	for _, tc := range []struct {
		name string
		hdr  []byte
	}{
		{"v1", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 443\r\n")},
		{"v2", proxyV2(1, mustAP("203.0.113.9:40000"), mustAP("192.0.2.1:443"), nil)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := readProxyHeader(bufio.NewReaderSize(bytes.NewReader(tc.hdr), 256)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
