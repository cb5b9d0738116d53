package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/media"
)

func needFFmpeg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
	return p
}

// fakeAuth: key "secret" publishes as "host1" (the password or ?key=);
// room "missing" does not exist; reads are open.
type fakeAuth struct{}

func (fakeAuth) AuthorizePublish(_ context.Context, roomID string, c media.RTSPCredentials) (string, error) {
	if roomID == "missing" {
		return "", media.ErrRoomNotFound
	}
	if c.Key == "secret" || c.Password == "secret" {
		return "host1", nil
	}
	return "", errors.New("bad credentials")
}

func (fakeAuth) AuthorizeRead(_ context.Context, roomID string, _ media.RTSPCredentials) error {
	if roomID == "missing" {
		return media.ErrRoomNotFound
	}
	return nil
}

type notices struct {
	mu  sync.Mutex
	got []string
}

func (n *notices) add(room, msg string) {
	n.mu.Lock()
	n.got = append(n.got, room+": "+msg)
	n.mu.Unlock()
}

func (n *notices) has(sub string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.got {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// freeUDPPair finds an even port whose successor is free too.
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		p &^= 1
		a, err1 := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
		b, err2 := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p+1))
		if a != nil {
			a.Close()
		}
		if b != nil {
			b.Close()
		}
		if err1 == nil && err2 == nil && p > 1024 {
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

func startRTSP(t *testing.T, s *media.SFU, n *notices) (*media.RTSPServer, string) {
	t.Helper()
	udp := freeUDPPair(t)
	deps := media.RTSPDeps{Auth: fakeAuth{}}
	if n != nil {
		deps.Notice = n.add
	}
	srv, err := s.ServeRTSP(media.RTSPConfig{Listen: "127.0.0.1:0", UDPPort: &udp}, deps)
	if err != nil {
		t.Fatalf("ServeRTSP: %v", err)
	}
	return srv, "rtsp://" + srv.Addr().String()
}

// ffmpegProc is a running ffmpeg with its stderr kept.
type ffmpegProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startFFmpeg(t *testing.T, args ...string) *ffmpegProc {
	t.Helper()
	bin := needFFmpeg(t)
	cmd := exec.Command(bin, append([]string{"-hide_banner", "-nostdin", "-loglevel", "info"}, args...)...)
	p := &ffmpegProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("ffmpeg %v stderr:\n%s", args, p.stderr.String())
		}
	})
	return p
}

func (p *ffmpegProc) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// wait returns ffmpeg's exit error, bounded.
func (p *ffmpegProc) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("ffmpeg still running after %v; stderr:\n%s", within, p.stderr.String())
		return nil
	}
}

// pushArgs: the test source, H264 baseline without B-frames + Opus.
func pushArgs(url, transport string, extra ...string) []string {
	args := []string{"-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "30", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30", "-preset", "ultrafast", "-tune", "zerolatency",
		"-c:a", "libopus"}
	args = append(args, extra...)
	return append(args, "-f", "rtsp", "-rtsp_transport", transport, url)
}
