package media

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtp"
)

// pullHostID is the host of every pulled source: a WHIP or RTSP host of the
// room conflicts with the pull (and the other way round) like any two hosts.
const pullHostID = "rtsp-pull"

// rtspPull is one room's pulled source: a loop that connects, plays until
// the source goes away, and reconnects with backoff.
type rtspPull struct {
	roomID string
	url    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartPull makes the server pull rawURL (rtsp:// or rtsps://, credentials
// in the URL) as roomID's source, until StopPull or Shutdown. The room is
// live while the source is up; a failed or ended connection is retried with
// backoff (rtsp.pull_retry_min..max). Calling it again with the same URL is
// a no-op; another URL replaces the pull. It takes no context: the pull
// outlives the request that configured it.
func (s *SFU) StartPull(roomID, rawURL string) error {
	if roomID == "" {
		return errors.New("media: empty room id")
	}
	u, err := base.ParseURL(rawURL)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return fmt.Errorf("media: pull source must be an rtsp:// or rtsps:// URL")
	}
	cfg := s.rtsp.config()
	s.rtsp.mu.Lock()
	s.rtsp.initLocked(s)
	if !s.rtsp.started {
		s.rtsp.mu.Unlock()
		return ErrClosed
	}
	old := s.rtsp.pulls[roomID]
	if old != nil && old.url == rawURL {
		s.rtsp.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &rtspPull{roomID: roomID, url: rawURL, cancel: cancel, done: make(chan struct{})}
	if s.rtsp.pulls == nil {
		s.rtsp.pulls = map[string]*rtspPull{}
	}
	s.rtsp.pulls[roomID] = p
	s.rtsp.mu.Unlock()
	if old != nil {
		old.cancel()
		<-old.done
	}
	if !s.spawn(func() { defer close(p.done); s.runPull(ctx, p, u, cfg) }) {
		cancel()
		close(p.done)
		return ErrClosed
	}
	return nil
}

// StopPull ends roomID's pull, if any; the room goes offline.
func (s *SFU) StopPull(roomID string) {
	s.rtsp.mu.Lock()
	p := s.rtsp.pulls[roomID]
	delete(s.rtsp.pulls, roomID)
	s.rtsp.mu.Unlock()
	if p != nil {
		p.cancel()
		<-p.done
	}
}

func redactURL(u *base.URL) string { return (*url.URL)(u).Redacted() }

func (s *SFU) runPull(ctx context.Context, p *rtspPull, u *base.URL, cfg RTSPConfig) {
	log := s.log.With("room", p.roomID, "rtsp", "pull", "url", redactURL(u))
	log.Info("rtsp pull started")
	backoff := cfg.PullRetryMin
	for {
		up, err := s.pullOnce(ctx, p.roomID, u, cfg)
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			log.Info("rtsp pull stopped")
			return
		}
		if up {
			backoff = cfg.PullRetryMin // it worked for a while: start over
		}
		s.rtspMetrics().errors.WithLabelValues("pull").Inc()
		log.Warn("rtsp pull down, retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			log.Info("rtsp pull stopped")
			return
		case <-t.C:
		}
		backoff = min(backoff*2, cfg.PullRetryMax)
	}
}

// pullOnce connects, plays and feeds the room until the source goes away;
// up reports whether it got as far as playing.
func (s *SFU) pullOnce(ctx context.Context, roomID string, u *base.URL, cfg RTSPConfig) (up bool, err error) {
	tr := gortsplib.TransportTCP
	if cfg.PullTransport == "udp" {
		tr = gortsplib.TransportUDP
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: cfg.ReadTimeout, Transport: &tr}
	if err := c.Start2(); err != nil {
		return false, err
	}
	defer c.Close()
	stopOnCancel := context.AfterFunc(ctx, c.Close)
	defer stopOnCancel()

	desc, _, err := c.Describe(u)
	if err != nil {
		return false, fmt.Errorf("describe: %w", err)
	}
	plan, err := planRTSP(desc, s.codecs)
	if err != nil {
		return false, err
	}
	for _, t := range plan.tracks {
		if _, err := c.Setup(desc.BaseURL, t.media, 0, 0); err != nil {
			return false, fmt.Errorf("setup: %w", err)
		}
	}

	r, release, err := s.acquire(roomID)
	if err != nil {
		return false, err
	}
	src := newRTSPSource(s, r, pullHostID, "pull", c.Close, nil)
	old, err := r.setSource(src)
	if err != nil {
		release()
		return false, err
	}
	s.rtspMetrics().sessions.WithLabelValues("pull").Inc()
	if old != nil {
		old.stop()
	}
	for _, msg := range plan.dropped {
		src.log.Warn("rtsp track dropped", "reason", msg)
	}
	tracks, err := src.start(plan, func(t *rtspTrack, p rtspTrackPlan) {
		// The camera's sender reports relate its tracks (and keep a
		// transcoder's delay out of lip sync).
		t.ntp = func(pkt *rtp.Packet) (time.Time, bool) { return c.PacketNTP(p.media, pkt) }
		c.OnPacketRTP(p.media, p.format, t.onPacket)
	})
	release()
	if err != nil {
		src.ended(err.Error())
		return false, err
	}
	s.openReadStream(src, tracks, plan.tracks)
	if _, err := c.Play(nil); err != nil {
		src.ended("play failed")
		return false, fmt.Errorf("play: %w", err)
	}
	r.sourceConnected(src)
	src.log.Info("rtsp pull live", "tracks", len(tracks))
	err = c.Wait()
	src.log.Info("rtsp pull ended", "err", err)
	src.ended("pull ended")
	return true, err
}

// Pulling returns the rooms this node pulls an RTSP source for, with the
// source URL of each.
func (s *SFU) Pulling() map[string]string {
	s.rtsp.mu.Lock()
	defer s.rtsp.mu.Unlock()
	out := make(map[string]string, len(s.rtsp.pulls))
	for id, p := range s.rtsp.pulls {
		out[id] = p.url
	}
	return out
}
