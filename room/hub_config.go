package room

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// HubConfig is the `hub:` section of the configuration.
type HubConfig struct {
	// AllowedOrigins come from http.allowed_origins (cmd copies them in).
	// The server's own origin is always allowed; "*" allows any; otherwise
	// exact scheme://host[:port] matches. Requests without Origin (non-browser
	// clients) are allowed: they carry their credentials in the URL.
	AllowedOrigins []string `yaml:"-"`
	// NodeID names this node in presence counts (from --node-id).
	NodeID string `yaml:"-"`

	// MaxConnsPerIP caps WebSocket connections per client address
	// (ClientKey: the resolved client, IPv6 by /64); 0 = no limit. Env
	// LIVEROOM_MAX_CONNS_PER_IP.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// SendQueue is how many events may wait for one connection before it is
	// disconnected as a slow consumer.
	SendQueue int `yaml:"send_queue"`
	// SendQueueBytes caps the bytes waiting for one connection, everything
	// counted: room events, replies, errors and the welcome a resume
	// queues. Over it, the client is disconnected as a slow consumer. A
	// resume whose missed events would fill half of it gets a fresh
	// snapshot (resumed: false) instead.
	SendQueueBytes int `yaml:"send_queue_bytes"`
	// ResumeRate is how many `resume` frames one connection may send a
	// second (each builds a full welcome); more get a rate_limited error.
	ResumeRate float64 `yaml:"resume_rate"`
	// ReadLimit is the largest frame handled, in bytes; larger ones get a
	// too_long error. Frames above MaxFrame close the connection (1009).
	ReadLimit int `yaml:"read_limit"`
	MaxFrame  int `yaml:"max_frame"`
	// HistorySize is how many events per room the bus keeps for resume.
	HistorySize int `yaml:"history_size"`
	// FrameRate and FrameBurst limit the frames one connection may send;
	// excess frames are dropped with a rate_limited error (at most one a
	// second). FloodFactor × FrameRate dropped frames within one second
	// disconnects the client (4009).
	FrameRate   float64 `yaml:"frame_rate"`
	FrameBurst  int     `yaml:"frame_burst"`
	FloodFactor int     `yaml:"flood_factor"`

	// AuthTimeout is how long a client that announced an auth frame
	// (?auth=frame) has to send it after the upgrade.
	AuthTimeout time.Duration `yaml:"auth_timeout"`

	PingInterval time.Duration `yaml:"ping_interval"`
	PongTimeout  time.Duration `yaml:"pong_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// ViewersInterval and LikesInterval pace the aggregated `viewers` and
	// `likes` events.
	ViewersInterval time.Duration `yaml:"viewers_interval"`
	LikesInterval   time.Duration `yaml:"likes_interval"`
	// Shards splits the room table to keep lock contention down.
	Shards int `yaml:"shards"`
	// WriteDelay caps how long a busy hub packs events: the shared writers
	// write a connection at once when they are idle, and after each pass
	// pause WriteDelay × (connections the writers wrote / 8000, at most 1),
	// so that what arrives meanwhile shares one syscall per connection. A
	// quiet hub never waits; at the default, 1,000 busy viewers wait ~5 ms,
	// a saturated hub up to WriteDelay per pass.
	// Larger values save CPU per delivery and add latency (0 = never
	// pause: pack only what queued during a pass).
	WriteDelay time.Duration `yaml:"write_delay"`
}

// DefaultHubConfig returns the defaults; YAML is decoded over them.
func DefaultHubConfig() HubConfig {
	return HubConfig{
		NodeID:          "node-1",
		MaxConnsPerIP:   200, // a carrier NAT can put many viewers behind one address
		SendQueue:       256,
		SendQueueBytes:  1 << 20,
		ResumeRate:      1,
		ReadLimit:       8 << 10,
		MaxFrame:        64 << 10,
		HistorySize:     1000,
		FrameRate:       20,
		FrameBurst:      40,
		FloodFactor:     10,
		AuthTimeout:     5 * time.Second,
		PingInterval:    25 * time.Second,
		PongTimeout:     60 * time.Second,
		WriteTimeout:    10 * time.Second,
		ViewersInterval: time.Second,
		LikesInterval:   250 * time.Millisecond,
		Shards:          16,
		WriteDelay:      40 * time.Millisecond,
	}
}

// Validate checks the section; errors name the key.
func (c HubConfig) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("hub.%s: %s", key, fmt.Sprintf(msg, args...)))
	}
	if c.NodeID == "" {
		bad("node_id", "must not be empty")
	}
	if c.MaxConnsPerIP < 0 {
		bad("max_conns_per_ip", "must be 0 (no limit) or positive, got %d", c.MaxConnsPerIP)
	}
	if c.SendQueue < 8 || c.SendQueue > 65536 {
		bad("send_queue", "must be 8-65536, got %d", c.SendQueue)
	}
	if c.SendQueueBytes < 64<<10 || c.SendQueueBytes > 256<<20 {
		bad("send_queue_bytes", "must be 65536-268435456, got %d", c.SendQueueBytes)
	}
	if c.ResumeRate <= 0 || c.ResumeRate > 100 {
		bad("resume_rate", "must be more than 0 and at most 100 a second, got %g", c.ResumeRate)
	}
	if c.ReadLimit < 512 || c.ReadLimit > 1<<20 {
		bad("read_limit", "must be 512-1048576 bytes, got %d", c.ReadLimit)
	}
	if c.MaxFrame < c.ReadLimit || c.MaxFrame > 16<<20 {
		bad("max_frame", "must be at least read_limit and at most 16 MiB, got %d", c.MaxFrame)
	}
	if c.HistorySize < 1 || c.HistorySize > 1_000_000 {
		bad("history_size", "must be 1-1000000, got %d", c.HistorySize)
	}
	if c.FrameRate <= 0 {
		bad("frame_rate", "must be positive, got %g", c.FrameRate)
	}
	if c.FrameBurst < 1 {
		bad("frame_burst", "must be at least 1, got %d", c.FrameBurst)
	}
	if c.FloodFactor < 1 {
		bad("flood_factor", "must be at least 1, got %d", c.FloodFactor)
	}
	if c.AuthTimeout < 100*time.Millisecond || c.AuthTimeout > time.Minute {
		bad("auth_timeout", "must be 100ms-1m, got %s", c.AuthTimeout)
	}
	if c.PingInterval < time.Second {
		bad("ping_interval", "must be at least 1s, got %s", c.PingInterval)
	}
	if c.PongTimeout <= c.PingInterval {
		bad("pong_timeout", "must be longer than ping_interval (%s), got %s", c.PingInterval, c.PongTimeout)
	}
	if c.WriteTimeout < 100*time.Millisecond {
		bad("write_timeout", "must be at least 100ms, got %s", c.WriteTimeout)
	}
	if c.ViewersInterval < 100*time.Millisecond {
		bad("viewers_interval", "must be at least 100ms, got %s", c.ViewersInterval)
	}
	if c.LikesInterval < 50*time.Millisecond {
		bad("likes_interval", "must be at least 50ms, got %s", c.LikesInterval)
	}
	if c.WriteDelay < 0 || c.WriteDelay > time.Second {
		bad("write_delay", "must be 0-1s, got %s", c.WriteDelay)
	}
	if c.Shards < 1 || c.Shards > 4096 {
		bad("shards", "must be 1-4096, got %d", c.Shards)
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("allowed_origins", "%q is not an origin (scheme://host[:port]) or *", o)
		}
	}
	return errors.Join(errs...)
}

// originAllowed implements the Origin check: same origin by default.
func (c HubConfig) originAllowed(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true // our own pages
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}
