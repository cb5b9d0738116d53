// Package proctest runs the real liveroom binary as a child process for
// tests: it builds it once, picks free loopback ports and waits for
// /healthz. A start that loses a port race (another test grabbed the port
// between the probe and the server's bind) is retried on fresh ports; any
// other early exit fails the test with the tail of the server's log.
package proctest

import (
	"bytes"
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

// The binary is built once per test process into a temporary directory
// that Main removes when the package's tests are done.
var (
	inMain    bool
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// Main runs a package's tests and then removes the binary Binary built for
// them; a package that starts servers calls it from its TestMain:
//
//	func TestMain(m *testing.M) { proctest.Main(m) }
func Main(m *testing.M) {
	inMain = true
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintf(os.Stderr, "proctest: remove %s: %v\n", binDir, err)
		}
	}
	os.Exit(code)
}

// Binary builds liveroom/cmd/liveroom once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if !inMain {
		t.Fatal("proctest: the package's TestMain must call proctest.Main, which removes the built binary")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "liveroom-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "liveroom")
		out, err := exec.Command("go", "build", "-o", binPath, "liveroom/cmd/liveroom").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeTCP returns a loopback TCP port that was free a moment ago.
func FreeTCP(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeUDPTCP returns a port free for UDP and TCP both: the WebRTC port
// serves ICE over each.
func FreeUDPTCP(t testing.TB) int {
	t.Helper()
	for range 50 {
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
	return 0
}

// Options describe one server process.
type Options struct {
	DataDir string
	// Args are appended to the `serve` flags proctest sets (--http,
	// --webrtc-port, --rtsp, --rtsp-udp 0, --rtmp, --srt 127.0.0.1:0, --data-dir).
	Args []string
	// Env is appended to the test's environment.
	Env []string
}

// Server is a running liveroom process.
type Server struct {
	Base       string // http://127.0.0.1:port
	WebRTCPort int
	RTSPAddr   string
	RTMPAddr   string

	cmd    *exec.Cmd
	done   chan struct{}
	err    error // valid once done is closed
	stdout lockedBuffer
	stderr lockedBuffer
}

// attempts bounds the retries of a start that lost a port race.
const attempts = 5

// Start runs the server and waits until /healthz answers 200; the process
// is killed when the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	bin := Binary(t)
	for try := 1; ; try++ {
		s, err := start(t, bin, opt)
		if err == nil {
			return s
		}
		if try < attempts && strings.Contains(s.Log(), "address already in use") {
			t.Logf("server start %d lost a port race; retrying on other ports", try)
			continue
		}
		t.Fatalf("%v; server log tail:\n%s", err, tail(s.Log(), 30))
	}
}

func start(t testing.TB, bin string, opt Options) (*Server, error) {
	s := &Server{WebRTCPort: FreeUDPTCP(t), RTSPAddr: fmt.Sprintf("127.0.0.1:%d", FreeTCP(t)), RTMPAddr: fmt.Sprintf("127.0.0.1:%d", FreeTCP(t)), done: make(chan struct{})}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", FreeTCP(t))
	s.Base = "http://" + httpAddr
	args := append([]string{"serve", "--http", httpAddr, "--webrtc-port", fmt.Sprint(s.WebRTCPort),
		"--rtsp", s.RTSPAddr, "--rtsp-udp", "0", "--rtmp", s.RTMPAddr, "--srt", "127.0.0.1:0", "--data-dir", opt.DataDir}, opt.Args...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), opt.Env...)
	s.cmd.Stdout = &s.stdout
	s.cmd.Stderr = &s.stderr
	if testing.Verbose() {
		s.cmd.Stderr = io.MultiWriter(&s.stderr, os.Stderr)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.Kill)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return s, fmt.Errorf("server exited before it was healthy: %v", s.err)
		default:
		}
		if resp, err := http.Get(s.Base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return s, fmt.Errorf("server at %s did not become healthy", s.Base)
}

// Stdout is what the server printed on standard output (the --dev URLs).
func (s *Server) Stdout() string { return s.stdout.String() }

// Log is the server's standard error: its slog output.
func (s *Server) Log() string { return s.stderr.String() }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Stop sends SIGTERM and returns how long the process took to exit
// cleanly; the test fails if it takes longer than within or exits non-zero.
func (s *Server) Stop(t testing.TB, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("exit after SIGTERM: %v; log tail:\n%s", s.err, tail(s.Log(), 30))
		}
	case <-time.After(within):
		t.Fatalf("still running %v after SIGTERM", within)
	}
	return time.Since(start)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
