//go:build linux

package netshape_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/media/netshape"
)

// TestShapedLink: a client in the namespace downloads from a server in the
// root namespace over the veth; the tbf holds it near the rate it is set
// to, raising the rate while traffic flows lets it through faster, and the
// namespace and both veth ends are gone after the test, failed or not.
func TestShapedLink(t *testing.T) {
	netshape.Need(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not installed")
	}
	var l *netshape.Link
	t.Run("link", func(t *testing.T) {
		l = netshape.New(t)
		ln, err := net.Listen("tcp", net.JoinHostPort(l.HostAddr.String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		blob := make([]byte, 4<<20)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			_, _ = w.Write(blob[:min(n, len(blob))])
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		url := "http://" + ln.Addr().String() + "/?n="

		// kbit/s seen by curl inside the namespace for n bytes.
		speed := func(n int) float64 {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := l.Command(ctx, "curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url+strconv.Itoa(n)).CombinedOutput()
			if err != nil {
				t.Fatalf("curl in %s: %v\n%s", l.NS, err, out)
			}
			bps, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil {
				t.Fatalf("curl said %q", out)
			}
			return bps * 8 / 1000
		}
		l.Shape(t, "1mbit", "16kb", "100ms")
		if got := speed(250_000); got > 1500 || got < 500 {
			t.Errorf("shaped to 1 Mbit/s: got %.0f kbit/s, want about 1000", got)
		}
		l.Shape(t, "8mbit", "32kb", "100ms")
		if got := speed(2_000_000); got > 12000 || got < 4000 {
			t.Errorf("raised to 8 Mbit/s: got %.0f kbit/s, want about 8000", got)
		}
		if st := l.Stats(t); !strings.Contains(st, "tbf") {
			t.Errorf("tc shows no tbf on %s:\n%s", l.HostDev, st)
		}
		l.Shape(t, "", "", "")
		if got := speed(4_000_000); got < 20000 {
			t.Errorf("unshaped: got %.0f kbit/s, want far above the shaped rates", got)
		}
	})
	if l == nil {
		return
	}
	if out, _ := exec.Command("ip", "netns", "list").CombinedOutput(); strings.Contains(string(out), l.NS) {
		t.Errorf("namespace %s left behind", l.NS)
	}
	if err := exec.Command("ip", "link", "show", l.HostDev).Run(); err == nil {
		t.Errorf("veth %s left behind", l.HostDev)
	}
}

// TestSweep: a namespace left by a process that is gone is removed by the
// next New; one of a live process is not.
func TestSweep(t *testing.T) {
	netshape.Need(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("lrshape-%d-deadbeef", dead.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", stale).Run() })
	l := netshape.New(t)
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), stale) {
		t.Errorf("stale namespace %s (its process is gone) was not swept", stale)
	}
	if !strings.Contains(string(out), l.NS) {
		t.Errorf("this test's namespace %s is missing", l.NS)
	}
}
