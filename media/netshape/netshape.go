//go:build linux

// Package netshape gives a test a constrained network link: a network
// namespace of its own, joined to the root namespace by a veth pair with
// addresses in a private /30, and a tc token-bucket filter (tbf) on the
// link that the test can change while it runs. The server under test stays
// in the root namespace (it sees the veth's root-side address like any
// other interface); the client runs inside with Command (ip netns exec).
//
// Namespaces are named lrshape-PID-RANDOM so that a test run's leftovers
// (a killed test binary never runs its cleanups) are swept by the next run:
// New deletes every lrshape namespace whose PID is gone, and with it the
// veth pair (deleting one end of a veth deletes both).
//
// It needs root and iproute2; under CI=true their absence fails the test,
// otherwise it skips.
package netshape

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// prefix is the name prefix of every namespace this package makes.
const prefix = "lrshape-"

// Link is one shaped link. Host is the root-side end (the server's side),
// Peer the end inside NS (the client's side).
type Link struct {
	NS                 string
	HostDev, PeerDev   string
	HostAddr, PeerAddr netip.Addr
}

// Need fails (CI=true) or skips the test unless namespaces, veths and tc
// can be used here.
func Need(t testing.TB) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "constrained links need root (network namespaces, tc)"
	case !onPath("ip"):
		why = "iproute2 (ip) not installed"
	case !onPath("tc"):
		why = "tc not installed"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why + " (set CI=true to make this a failure)")
}

func onPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

// New makes a namespace and a veth pair into it, unshaped. Everything is
// removed at the test's cleanup, whether it passed or not.
func New(t testing.TB) *Link {
	t.Helper()
	Need(t)
	Sweep(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%08x", binary.BigEndian.Uint32(b[:]))
	l := &Link{
		NS: fmt.Sprintf("%s%d-%s", prefix, os.Getpid(), id),
		// 12 bytes: interface names are at most 15. Test peers
		// (mediatest) never gather on a root-side lrs…h device.
		HostDev: "lrs" + id + "h",
		PeerDev: "lrs" + id + "p",
	}
	fail := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf("cannot make a constrained link: "+format, args...)
	}
	if out, err := run("ip", "netns", "add", l.NS); err != nil {
		fail("ip netns add %s: %v\n%s", l.NS, err, out)
	}
	t.Cleanup(func() { l.remove(t) })
	host, peer, err := freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	l.HostAddr, l.PeerAddr = host, peer
	steps := [][]string{
		{"ip", "link", "add", l.HostDev, "type", "veth", "peer", "name", l.PeerDev, "netns", l.NS},
		{"ip", "addr", "add", host.String() + "/30", "dev", l.HostDev},
		{"ip", "link", "set", l.HostDev, "up"},
		{"ip", "-n", l.NS, "link", "set", "lo", "up"},
		{"ip", "-n", l.NS, "addr", "add", peer.String() + "/30", "dev", l.PeerDev},
		{"ip", "-n", l.NS, "link", "set", l.PeerDev, "up"},
		// Everything the client sends leaves through the veth (the server
		// may answer from any of the host's addresses).
		{"ip", "-n", l.NS, "route", "add", "default", "via", host.String()},
	}
	for _, s := range steps {
		if out, err := run(s[0], s[1:]...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return l
}

// Shape sets (or changes, while traffic flows) the rate of the link towards
// the client: a tbf on the root-side end, whose egress is everything the
// server sends to the namespace. rate, burst and latency are tc's syntax
// ("800kbit", "16kb", "50ms"). An empty rate removes the shaping.
func (l *Link) Shape(t testing.TB, rate, burst, latency string) {
	t.Helper()
	l.shape(t, l.HostDev, "", rate, burst, latency)
}

// ShapeUp does the same for what the client sends (the peer end's egress).
func (l *Link) ShapeUp(t testing.TB, rate, burst, latency string) {
	t.Helper()
	l.shape(t, l.PeerDev, l.NS, rate, burst, latency)
}

func (l *Link) shape(t testing.TB, dev, ns, rate, burst, latency string) {
	t.Helper()
	args := []string{}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	if rate == "" {
		args = append(args, "qdisc", "del", "dev", dev, "root")
		if out, err := run("tc", args...); err != nil && !strings.Contains(string(out), "No such file") &&
			!strings.Contains(string(out), "Cannot delete qdisc with handle of zero") {
			t.Fatalf("tc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return
	}
	args = append(args, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", burst, "latency", latency)
	if out, err := run("tc", args...); err != nil {
		t.Fatalf("tc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Stats is what tc says about the downlink's qdisc (sent bytes, drops).
func (l *Link) Stats(t testing.TB) string {
	t.Helper()
	out, err := run("tc", "-s", "qdisc", "show", "dev", l.HostDev)
	if err != nil {
		t.Fatalf("tc -s qdisc show dev %s: %v\n%s", l.HostDev, err, out)
	}
	return string(out)
}

// Command runs name inside the namespace (ip netns exec).
func (l *Link) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
}

// remove deletes the namespace (and so the veth pair, both ends).
func (l *Link) remove(t testing.TB) {
	if out, err := run("ip", "netns", "del", l.NS); err != nil {
		t.Errorf("ip netns del %s: %v\n%s", l.NS, err, out)
	}
	// The root-side end goes with its peer (the kernel may take a moment);
	// make sure of it.
	if out, err := run("ip", "link", "del", l.HostDev); err != nil && !strings.Contains(string(out), "Cannot find device") {
		t.Errorf("ip link del %s: %v\n%s", l.HostDev, err, out)
	}
}

// Sweep deletes the namespaces left by test processes that are gone.
func Sweep(t testing.TB) {
	t.Helper()
	out, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		if out, err := run("ip", "netns", "del", name); err != nil {
			t.Logf("sweeping stale namespace %s: %v\n%s", name, err, out)
		}
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// freeSubnet picks a random /30 in 10.213.0.0/16 that no interface of the
// root namespace has an address in; it returns its two usable addresses.
func freeSubnet() (host, peer netip.Addr, err error) {
	out, err := run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		return host, peer, fmt.Errorf("ip addr show: %v\n%s", err, out)
	}
	used := string(out)
	for range 64 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		base := netip.AddrFrom4([4]byte{10, 213, b[0], b[1] &^ 3})
		host, peer = base.Next(), base.Next().Next()
		if !strings.Contains(used, " "+host.String()+"/") && !strings.Contains(used, " "+peer.String()+"/") {
			return host, peer, nil
		}
	}
	return host, peer, fmt.Errorf("no free /30 in 10.213.0.0/16")
}

func run(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
