package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real liveroom binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liveroom-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "liveroom")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		// The WebRTC port is used for UDP and TCP both: find one free for both.
		for i := 0; i < 50; i++ {
			c, err := net.ListenPacket("udp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			port := c.LocalAddr().(*net.UDPAddr).Port
			l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
			c.Close()
			if err == nil {
				l.Close()
				return port
			}
		}
		t.Fatal("no port free for both UDP and TCP")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a running liveroom process.
type proc struct {
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	stdout strings.Builder
	done   chan error
}

func startServer(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	httpPort := freePort(t, "tcp")
	args := append([]string{"serve", "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--webrtc-port", fmt.Sprint(freePort(t, "udp")), "--rtsp", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		"--rtsp-udp", "0", "--data-dir", dataDir}, extra...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "LIVEROOM_JWT_SECRET=", "LIVEROOM_ADMIN_KEY=")
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if !testing.Verbose() {
		cmd.Stderr = io.Discard
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("server exited before it was healthy: %v (run with -v for its log)", err)
		default:
		}
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not become healthy at %s", p.base)
	return nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// stop sends SIGTERM and returns how long the process took to exit.
func (p *proc) stop(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("still running %v after SIGTERM", within)
	}
	return time.Since(start)
}

func TestServeDevPrintsURLsAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, "--dev")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.output(), "moderator:") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := p.output()
	for _, want := range []string{"/studio/demo#token=", "/r/demo", "/mod/demo#token=", "/whip/demo", "sk_", "rtsp://host:sk_"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dev output lacks %q:\n%s", want, out)
		}
	}
	// The printed studio page and room exist.
	for _, path := range []string{"/studio/demo", "/r/demo", "/api/v1/rooms/demo"} {
		resp, err := http.Get(p.base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	p.stop(t, 5*time.Second)

	// The demo room and secrets survive a restart.
	p2 := startServer(t, dir)
	resp, err := http.Get(p2.base + "/api/v1/rooms/demo")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after restart: %v %v", err, resp)
	}
	resp.Body.Close()
	p2.stop(t, 5*time.Second)
}
