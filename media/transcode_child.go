package media

import (
	"fmt"
	"io"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// transcodeChild is what both transcoders (AAC → Opus, transcode.go; Opus →
// AAC, transcode_aac.go) share: an ffmpeg process fed from a bounded queue
// of timestamped units by one goroutine and read by another, and the map
// from input sample offsets to PTS that lets output keep the input's
// timestamps. The transcoder embeds it and supplies the two goroutines.
type transcodeChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	queue  chan aacUnit
	done   chan struct{} // closed by read when ffmpeg exited and its output is read
	err    error         // why ffmpeg ended; set before done is closed

	mu      sync.Mutex
	closed  bool
	mapping []ptsMark // input sample offset -> PTS, oldest first (capped)

	dropped atomic.Uint64
}

// aacUnit is one queued input unit (AAC or Opus) with its PTS.
type aacUnit struct {
	au  []byte
	pts time.Duration
}

// ptsMark says input sample off (counted from the first unit written to
// ffmpeg, at the input's rate) is at pts.
type ptsMark struct {
	off int64
	pts time.Duration
}

func newTranscodeChild() transcodeChild {
	return transcodeChild{
		stderr: &tailBuffer{max: transcodeStderrCap},
		queue:  make(chan aacUnit, transcodeQueue),
		done:   make(chan struct{}),
	}
}

// start runs ffmpeg with args and the transcoder's feed (stdin) and read
// (stdout; it must close done when it returns) goroutines.
func (c *transcodeChild) start(args []string, feed func(), read func(io.Reader)) error {
	c.cmd = exec.Command("ffmpeg", args...)
	c.cmd.Stderr = c.stderr
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	c.stdin = stdin
	go feed()
	go read(stdout)
	return nil
}

// Write queues one unit with its PTS. It never blocks: when ffmpeg falls
// behind the unit is dropped and counted. It fails once the transcoder is
// closed or ffmpeg has died.
func (c *transcodeChild) Write(au []byte, pts time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrTranscoderClosed
	}
	select {
	case <-c.done:
		return fmt.Errorf("%w: %w", ErrTranscoderClosed, c.err)
	default:
	}
	select {
	case c.queue <- aacUnit{au: append([]byte(nil), au...), pts: pts}:
	default:
		c.dropped.Add(1)
	}
	return nil
}

// Dropped is the number of units dropped because ffmpeg fell behind (or
// could not be framed).
func (c *transcodeChild) Dropped() uint64 { return c.dropped.Load() }

// Close kills ffmpeg and waits until it is reaped and its output goroutine
// has returned; the output callback is not called after Close returns. It
// returns why ffmpeg ended if that happened before Close.
func (c *transcodeChild) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	close(c.queue)
	c.mu.Unlock()
	var early error
	select {
	case <-c.done:
		early = c.err
	default:
	}
	_ = c.cmd.Process.Kill()
	_ = c.stdin.Close()
	<-c.done
	return early
}

// mark records that input sample off is at pts (the feed goroutine, before
// writing the unit that starts there).
func (c *transcodeChild) mark(off int64, pts time.Duration) {
	c.mu.Lock()
	if len(c.mapping) >= transcodeMapCap {
		c.mapping = append(c.mapping[:0], c.mapping[len(c.mapping)/2:]...)
	}
	c.mapping = append(c.mapping, ptsMark{off: off, pts: pts})
	c.mu.Unlock()
}

// drain empties the queue after ffmpeg's stdin failed, so that Close's
// close(queue) ends the feed goroutine.
func (c *transcodeChild) drain() {
	for range c.queue {
	}
}
