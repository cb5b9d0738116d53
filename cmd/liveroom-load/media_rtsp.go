package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// rtspPublisher is ffmpeg encoding a test pattern and publishing it to a
// room over RTSP: a source that cannot be asked for keyframes, with a fixed
// GOP (the fast-start measure of issue 16).
type rtspPublisher struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	stderr bytes.Buffer
}

// rtspPublishOptions shape the stream ffmpeg sends.
type rtspPublishOptions struct {
	URL     string // rtsp://host:port
	Room    string
	Key     string
	GOP     time.Duration // keyframe interval
	Bitrate int           // kbit/s
	Size    string        // WxH
	FPS     int
}

// startRTSPPublisher starts ffmpeg; Close stops it. ffmpeg ends the
// publish if the server refuses it: the error then is in Close's report.
func startRTSPPublisher(ctx context.Context, o rtspPublishOptions) (*rtspPublisher, error) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return nil, fmt.Errorf("--rtsp-publish needs ffmpeg: %w", err)
	}
	if o.FPS <= 0 || o.GOP <= 0 || o.Bitrate <= 0 {
		return nil, fmt.Errorf("rtsp publish: fps, gop and bitrate must be positive")
	}
	g := strconv.Itoa(int(o.GOP.Seconds() * float64(o.FPS)))
	br := strconv.Itoa(o.Bitrate) + "k"
	target := o.URL + "/" + url.PathEscape(o.Room) + "?key=" + url.QueryEscape(o.Key)
	ctx, cancel := context.WithCancel(ctx)
	p := &rtspPublisher{cancel: cancel, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", o.Size, o.FPS),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-profile:v", "baseline", "-bf", "0", "-g", g, "-keyint_min", g, "-sc_threshold", "0",
		"-b:v", br, "-maxrate", br, "-bufsize", br,
		"-an", "-f", "rtsp", "-rtsp_transport", "tcp", target)
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if err := p.cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
	}()
	return p, nil
}

// Exited reports whether ffmpeg is gone (refused, or the server went away).
func (p *rtspPublisher) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stderr is what ffmpeg said.
func (p *rtspPublisher) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Close stops ffmpeg and waits for it.
func (p *rtspPublisher) Close() {
	p.cancel()
	<-p.done
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
