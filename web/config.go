package web

import (
	"errors"
	"fmt"
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
	// TrustedProxies (CIDRs or addresses) are the peers whose
	// X-Forwarded-For, and PROXY protocol header when ProxyProtocol is on,
	// name the client; every per-address limit counts that client. Their
	// X-Forwarded-Proto (no one else's) is believed too. Empty = the TCP
	// peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ProxyProtocol accepts a PROXY protocol header (v1 or v2) at the start
	// of connections from TrustedProxies (haproxy send-proxy[-v2]).
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// ProxyHeaderTimeout bounds the wait for that header.
	ProxyHeaderTimeout time.Duration `yaml:"proxy_header_timeout"`
	// BodyTimeout bounds the time a request body may take to arrive, on
	// every route that takes one; responses are never cut by it.
	BodyTimeout time.Duration `yaml:"body_timeout"`
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
	if c.ProxyHeaderTimeout == 0 {
		c.ProxyHeaderTimeout = 5 * time.Second
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.DrainWait == 0 {
		c.DrainWait = 2 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// ClientAddrs is the client address model of the section (call after
// Validate).
func (c Config) ClientAddrs() *ClientAddrs {
	p, _ := ParseTrustedProxies(c.TrustedProxies)
	return NewClientAddrs(p)
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
	if _, err := ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
		return errors.New("http.proxy_protocol: needs http.trusted_proxies (the proxies allowed to send the header)")
	}
	if c.ProxyHeaderTimeout < 100*time.Millisecond || c.ProxyHeaderTimeout > time.Minute {
		return fmt.Errorf("http.proxy_header_timeout: must be 100ms..1m, got %s", c.ProxyHeaderTimeout)
	}
	if c.BodyTimeout < 100*time.Millisecond || c.BodyTimeout > 10*time.Minute {
		return fmt.Errorf("http.body_timeout: must be 100ms..10m, got %s", c.BodyTimeout)
	}
	if c.DrainWait < 0 || c.DrainWait > 5*time.Minute {
		return errors.New("http.drain_wait: must be between 0s and 5m")
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > 10*time.Minute {
		return errors.New("http.drain_timeout: must be between 0s and 10m")
	}
	return nil
}
