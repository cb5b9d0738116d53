package media

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAddrs is a host whose address list the test edits.
type fakeAddrs struct {
	mu    sync.Mutex
	addrs []hostAddr
	err   error
}

func (f *fakeAddrs) set(a ...hostAddr) { f.mu.Lock(); f.addrs = a; f.mu.Unlock() }
func (f *fakeAddrs) fail(err error)    { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *fakeAddrs) list() ([]hostAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs), f.err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func up(ip, iface string) hostAddr {
	return hostAddr{Addr: netip.MustParseAddr(ip), Iface: iface, Up: true}
}

func listenAddrs(m *addrMux) []string {
	var out []string
	for _, a := range m.GetListenAddresses() {
		out = append(out, a.String())
	}
	return out
}

// TestAddrMuxFollowsAddresses: the mux binds what is usable, skips what is
// not (link-local, tentative, down, filtered, unbindable: the last logged
// once however often it is retried), adds an address that appears and
// retires one that goes.
func TestAddrMuxFollowsAddresses(t *testing.T) {
	// 127.0.0.0/8 is all bindable on Linux loopback: the test's "host".
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port

	host := &fakeAddrs{}
	tentative := up("fd00::dead", "veth0")
	tentative.Tentative = true
	down := up("127.0.0.9", "veth1")
	down.Up = false
	host.set(
		up("127.0.0.2", "lo"),
		up("127.0.0.3", "lo"), // port taken
		up("fe80::1", "veth0"),
		tentative,
		down,
		up("10.0.0.1", "eth0"), // not in webrtc.addresses
	)
	filter, err := newAddrFilter(Config{Addresses: []string{"127.0.0.0/8", "fd00::/8"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newAddrMux(port, filter, addrMuxOptions{every: time.Hour, grace: 0, list: host.list}, log, nil)
	defer m.Close()

	want2 := "127.0.0.2:" + strconv.Itoa(port)
	if got := listenAddrs(m); !slices.Equal(got, []string{want2}) {
		t.Fatalf("listen addresses: got %v, want [%s]\nlog:\n%s", got, want2, logs)
	}
	for _, r := range []string{"link-local", "tentative", "interface down", "not in webrtc.addresses", "cannot bind"} {
		if !strings.Contains(logs.String(), r) {
			t.Errorf("log does not say %q:\n%s", r, logs)
		}
	}

	// A new address, and the host loses one.
	host.set(up("127.0.0.3", "lo"), up("127.0.0.4", "lo"))
	m.changed()
	want4 := "127.0.0.4:" + strconv.Itoa(port)
	if got := listenAddrs(m); !slices.Equal(got, []string{want4}) {
		t.Fatalf("after the change: got %v, want [%s]", got, want4)
	}
	m.refresh()
	m.refresh()
	if n := strings.Count(logs.String(), "cannot bind"); n != 1 {
		t.Errorf("the unbindable address was logged %d times, want once:\n%s", n, logs)
	}
	// The vanished address's socket is closed (grace 0): its port is free.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port})
	if err != nil {
		t.Errorf("127.0.0.2's socket still bound after the address went: %v", err)
	} else {
		c.Close()
	}
	if _, err := m.GetConn("ufrag", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port}); err == nil {
		t.Error("GetConn on a vanished address: no error")
	}
	pc, err := m.GetConn("ufrag", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 4), Port: port})
	if err != nil {
		t.Fatalf("GetConn on a usable address: %v", err)
	}
	pc.Close()
	if !m.usableIP(net.IPv4(127, 0, 0, 4)) || m.usableIP(net.IPv4(127, 0, 0, 2)) {
		t.Error("usableIP does not match the usable set")
	}

	// The host cannot be read: the sockets stay, the failure is logged once.
	host.set()
	host.fail(errors.New("netlink broke"))
	m.refresh()
	m.refresh()
	if got := listenAddrs(m); !slices.Equal(got, []string{want4}) {
		t.Errorf("after a failed read: got %v, want [%s] kept", got, want4)
	}
	if n := strings.Count(logs.String(), "netlink broke"); n != 1 {
		t.Errorf("the read failure was logged %d times, want once", n)
	}
	host.fail(nil)

	// Nothing usable: no error, an empty set.
	host.set()
	m.changed()
	if got := listenAddrs(m); len(got) != 0 {
		t.Errorf("no addresses: got %v", got)
	}
}

// TestAddrMuxGrace: an address that vanishes and comes back within the
// grace period keeps its socket.
func TestAddrMuxGrace(t *testing.T) {
	host := &fakeAddrs{}
	host.set(up("127.0.0.5", "lo"))
	filter, _ := newAddrFilter(Config{Addresses: []string{"127.0.0.0/8"}})
	m := newAddrMux(0, filter, addrMuxOptions{every: time.Hour, grace: time.Hour, list: host.list}, slog.New(slog.DiscardHandler), nil)
	defer m.Close()
	before := m.socks[netip.MustParseAddr("127.0.0.5")]
	if before == nil {
		t.Fatal("not bound")
	}
	host.set()
	m.refresh()
	if len(m.Usable()) != 0 {
		t.Fatalf("vanished address still usable: %v", m.Usable())
	}
	host.set(up("127.0.0.5", "lo"))
	m.refresh()
	if got := m.socks[netip.MustParseAddr("127.0.0.5")]; got != before || len(m.Usable()) != 1 {
		t.Errorf("address back within grace: socket %p, was %p; usable %v", got, before, m.Usable())
	}
}
