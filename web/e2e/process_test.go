package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeOptions describe one server process: its log is <name>.log in the
// artifacts; args are added to the serve flags.
type nodeOptions struct {
	name, jwtSecret, adminKey string
	args                      []string
}

// server is one liveroom process on fixed loopback ports; it can be killed,
// terminated and started again on the same ports (failover tests).
type server struct {
	base     string
	adminKey string

	name string
	argv []string
	env  []string
	log  *os.File
	logs *tail

	mu   sync.Mutex
	proc *process
}

type process struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited; err is then set
	err      error
	stopping bool // an exit from now on is expected
}

func startNode(t *testing.T, artifacts string, o nodeOptions) *server {
	t.Helper()
	tmp := t.TempDir()
	s := &server{adminKey: o.adminKey, name: o.name, logs: &tail{}}
	ports := func() {
		httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, false))
		s.base = "http://" + httpAddr
		s.argv = append([]string{binary(t), "serve",
			"--http", httpAddr,
			"--webrtc-port", strconv.Itoa(freePort(t, true)),
			"--rtsp", fmt.Sprintf("127.0.0.1:%d", freePort(t, false)),
			"--rtsp-udp", "0",
			"--rtmp", "", "--srt", "", // no ingest listeners on their fixed default ports (tests that want RTMP pass --rtmp ADDR after these)
			"--data-dir", filepath.Join(tmp, "data"),
		}, o.args...)
	}
	ports()
	s.env = append(os.Environ(), "LIVEROOM_JWT_SECRET="+o.jwtSecret, "LIVEROOM_ADMIN_KEY="+o.adminKey)
	var err error
	if s.log, err = os.Create(filepath.Join(artifacts, o.name+".log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("%s log (full log in %s):\n%s", s.name, s.log.Name(), s.logs)
		}
		s.log.Close()
	})
	// A port found free can be taken before the node binds it (by another
	// package's test, or as a connection's ephemeral port): new ports, a
	// few times. Only here: a restarted node keeps its ports.
	for try := 1; ; try++ {
		err := s.tryLaunch()
		if err == nil {
			return s
		}
		if try == 3 || !strings.Contains(s.logs.String(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("%s: a port was taken before it bound, new ports (try %d): %v", s.name, try+1, err)
		ports()
	}
}

// launch starts the process and waits until /healthz answers.
func (s *server) launch(t *testing.T) {
	t.Helper()
	if err := s.tryLaunch(); err != nil {
		t.Fatal(err)
	}
}

// tryLaunch is launch, returning what went wrong.
func (s *server) tryLaunch() error {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = s.env
	cmd.Stdout = io.MultiWriter(s.log, s.logs)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %v", s.argv[0], err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			p.stopping = true
			return fmt.Errorf("%s exited before it was healthy: %v\n%s", s.name, p.err, s.logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: GET /healthz not 200 within 30s (last error %v)\n%s", s.name, err, s.logs)
		}
	}
}

// kill ends the process with SIGKILL and waits for it.
func (s *server) kill(t *testing.T) {
	t.Helper()
	p := s.expectExit()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// term sends SIGTERM (the node drains) and returns a channel closed at its
// exit.
func (s *server) term(t *testing.T) <-chan struct{} {
	t.Helper()
	p := s.expectExit()
	if p == nil {
		t.Fatalf("%s is not running", s.name)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.done
}

func (s *server) expectExit() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p != nil {
		p.stopping = true
	}
	return p
}

// stop ends a running process at the test's end: SIGTERM, then SIGKILL after
// 20 s (the node drains first). An exit nobody asked for is an error.
func (s *server) stop(t *testing.T) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done:
		if !p.stopping {
			t.Errorf("%s exited during the test: %v\n%s", s.name, p.err, s.logs)
		}
		return
	default:
	}
	if !p.stopping {
		p.stopping = true
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Logf("%s exit after SIGTERM: %v", s.name, p.err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s still running 20s after SIGTERM; killing it\n%s", s.name, s.logs)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
