package media

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAddrFilter(t *testing.T) {
	a := func(ip, iface string) hostAddr {
		return hostAddr{Addr: netip.MustParseAddr(ip), Iface: iface, Up: true, Loopback: iface == "lo"}
	}
	tent := a("2001:db8::1", "eth0")
	tent.Tentative = true
	down := a("10.1.1.1", "eth1")
	down.Up = false
	cases := []struct {
		name       string
		interfaces []string
		addresses  []string
		addr       hostAddr
		skip       string // substring of the reason; "" = used
	}{
		{"global v4", nil, nil, a("10.1.1.1", "eth0"), ""},
		{"global v6", nil, nil, a("2001:db8::2", "eth0"), ""},
		{"link-local v6", nil, nil, a("fe80::1", "eth0"), "link-local"},
		{"link-local v4", nil, nil, a("169.254.3.4", "eth0"), "link-local"},
		{"tentative", nil, nil, tent, "tentative"},
		{"down", nil, nil, down, "down"},
		{"loopback by default", nil, nil, a("127.0.0.1", "lo"), "loopback"},
		{"loopback by a pattern", []string{"l*"}, nil, a("127.0.0.1", "lo"), "loopback"},
		{"loopback by a wide network", nil, []string{"0.0.0.0/0"}, a("127.0.0.1", "lo"), "loopback"},
		{"loopback named", []string{"lo"}, nil, a("127.0.0.1", "lo"), ""},
		{"loopback address named", nil, []string{"127.0.0.1"}, a("127.0.0.1", "lo"), ""},
		{"interface pattern", []string{"eth*"}, nil, a("10.1.1.1", "eth3"), ""},
		{"interface not listed", []string{"eth*"}, nil, a("10.1.1.1", "wg0"), "webrtc.interfaces"},
		{"network", nil, []string{"10.0.0.0/8"}, a("10.1.1.1", "eth0"), ""},
		{"not in network", nil, []string{"10.0.0.0/8"}, a("192.168.1.1", "eth0"), "webrtc.addresses"},
		{"single address", nil, []string{"2001:db8::2"}, a("2001:db8::2", "eth0"), ""},
		{"both lists", []string{"eth0"}, []string{"10.0.0.0/8"}, a("10.1.1.1", "eth1"), "webrtc.interfaces"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := newAddrFilter(Config{Interfaces: c.interfaces, Addresses: c.addresses})
			if err != nil {
				t.Fatal(err)
			}
			got := f.skip(c.addr)
			if (got == "") != (c.skip == "") || !strings.Contains(got, c.skip) {
				t.Errorf("skip(%v on %s) = %q, want %q", c.addr.Addr, c.addr.Iface, got, c.skip)
			}
		})
	}
}

func TestConfigAddressKeys(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"defaults", Config{}, ""},
		{"lists", Config{Interfaces: []string{"eth*", "lo"}, Addresses: []string{"10.0.0.0/8", "2001:db8::1"}}, ""},
		{"bad network", Config{Addresses: []string{"10.0.0.0/33"}}, "webrtc.addresses[0]"},
		{"not an address", Config{Addresses: []string{"", "eth0"}}, "webrtc.addresses[0]"},
		{"zone", Config{Addresses: []string{"fe80::1%eth0"}}, "webrtc.addresses[0]"},
		{"bad pattern", Config{Interfaces: []string{"eth["}}, "webrtc.interfaces[0]"},
		{"empty name", Config{Interfaces: []string{"eth0", ""}}, "webrtc.interfaces[1]"},
		{"listen_ip and a list", Config{ListenIP: "10.0.0.1", Interfaces: []string{"eth0"}}, "webrtc.listen_ip"},
		{"negative refresh", Config{AddressRefresh: -1}, "webrtc.address_refresh"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
}
