//go:build linux

package mediatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace a test made for itself: its interfaces and
// addresses exist nowhere else, so the test may add, break and remove them
// without touching the host's network or other tests. It is deleted at the
// test's cleanup with every interface in it.
type Netns struct {
	Name string
}

// NeedNetns fails the test under CI=true, or skips it, when network
// namespaces cannot be made here (not root, no iproute2).
func NeedNetns(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "network namespaces need root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "iproute2 (ip) not installed"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why + " (set CI=true to make this a failure)")
}

// NewNetns makes a namespace named lr-PID-RANDOM-role with its loopback up.
func NewNetns(t testing.TB, role string) *Netns {
	t.Helper()
	NeedNetns(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	n := &Netns{Name: fmt.Sprintf("lr-%d-%s-%s", os.Getpid(), hex.EncodeToString(b[:]), role)}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ip netns add %s: %v\n%s", n.Name, err, out)
		}
		t.Skipf("cannot make a network namespace: ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", n.Name, err, out)
		}
	})
	n.IP(t, "link", "set", "lo", "up")
	return n
}

// IP runs `ip -n NAME args...` and returns its output; an error fails the
// test.
func (n *Netns) IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command runs name inside the namespace (ip netns exec).
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Veth links namespace a to b with a veth pair (aName in a, bName in b),
// gives each end its address (CIDR, e.g. "10.200.1.1/30") and brings both
// up.
func Veth(t testing.TB, a *Netns, aName, aAddr string, b *Netns, bName, bAddr string) {
	t.Helper()
	a.IP(t, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
	a.IP(t, "addr", "add", aAddr, "dev", aName)
	b.IP(t, "addr", "add", bAddr, "dev", bName)
	a.IP(t, "link", "set", aName, "up")
	b.IP(t, "link", "set", bName, "up")
}

// DialContext connects from inside the namespace: the socket is made on an
// OS thread that entered the namespace and is thrown away afterwards (the
// goroutine never unlocks it), so nothing else in the process changes
// namespace.
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		f, err := os.Open("/run/netns/" + n.Name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", n.Name, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// HTTPClient returns a client whose connections are made inside the
// namespace.
func (n *Netns) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true},
	}
}
