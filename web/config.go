package web

import (
	"errors"
	"net"
	"net/url"
	"time"
)

// Config is the `http:` section of the configuration.
type Config struct {
	Listen string `yaml:"listen"` // address of the HTTP server, default ":8080"
	// PublicURL is how clients reach this server (used in printed URLs and
	// WHIP/WHEP Locations); empty = derived from each request.
	PublicURL string `yaml:"public_url"`
	// AllowedOrigins lists the browser origins that may open the room
	// WebSocket and call WHIP/WHEP from another site; empty = same origin only.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxSDPBytes bounds a WHIP/WHEP offer; real offers are a few KiB.
	MaxSDPBytes int64 `yaml:"max_sdp_bytes"`
	// DrainWait is how long a node told to stop (SIGTERM) fails /readyz
	// before it tells its clients to move: at least the balancer's health
	// check detection time. DrainTimeout bounds the wait for WebRTC sessions
	// to move after that.
	DrainWait    time.Duration `yaml:"drain_wait"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// SetDefaults fills in what is not set.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.MaxSDPBytes == 0 {
		c.MaxSDPBytes = 64 << 10
	}
	if c.DrainWait == 0 {
		c.DrainWait = 2 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return errors.New("http.listen: must be host:port, e.g. :8080")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("http.public_url: must be an http:// or https:// URL")
		}
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if o != "*" && (err != nil || u.Scheme == "" || u.Host == "") {
			return errors.New("http.allowed_origins: each entry must be an origin like https://shop.example or *")
		}
	}
	if c.MaxSDPBytes < 4096 || c.MaxSDPBytes > 1<<20 {
		return errors.New("http.max_sdp_bytes: must be between 4096 and 1048576")
	}
	if c.DrainWait < 0 || c.DrainWait > 5*time.Minute {
		return errors.New("http.drain_wait: must be between 0s and 5m")
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > 10*time.Minute {
		return errors.New("http.drain_timeout: must be between 0s and 10m")
	}
	return nil
}
