package media

import (
	"fmt"
	"net"
	"time"
)

// RTSPConfig is the RTSP configuration; cmd composes it under the YAML key
// `rtsp:`. Like Config, SetDefaults runs before the YAML is decoded.
type RTSPConfig struct {
	// Listen is the RTSP (TCP) address: publish, read, and interleaved media.
	Listen string `yaml:"listen"`
	// UDPPort is the RTP port for the UDP transport; RTCP uses UDPPort+1.
	// 0 = TCP only. A pointer so that an explicit 0 survives SetDefaults.
	UDPPort *int `yaml:"udp_port"`
	// ReadTimeout ends an RTSP session (publisher, reader, pull) that sends
	// nothing for this long.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// PullTransport is how pulled sources are fetched: "tcp" (interleaved,
	// the default: works through NAT and firewalls) or "udp".
	PullTransport string `yaml:"pull_transport"`
	// PullRetryMin and PullRetryMax bound the backoff between attempts to
	// reconnect a pulled source; it doubles from min to max and resets after
	// a connection that stayed up.
	PullRetryMin time.Duration `yaml:"pull_retry_min"`
	PullRetryMax time.Duration `yaml:"pull_retry_max"`
	// Limits cap RTSP sessions and readers (limits_rtsp.go). SetDefaults
	// leaves them alone (it also runs after the YAML, where 0 = no limit):
	// the caller applies Limits.SetDefaults before decoding.
	Limits RTSPLimits `yaml:"limits"`
}

// RTSP defaults.
const (
	DefaultRTSPListen       = ":8554"
	DefaultRTSPUDPPort      = 8000
	DefaultRTSPReadTimeout  = 10 * time.Second
	DefaultRTSPPullRetryMin = time.Second
	DefaultRTSPPullRetryMax = 30 * time.Second
)

// SetDefaults fills unset fields.
func (c *RTSPConfig) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultRTSPListen
	}
	if c.UDPPort == nil {
		p := DefaultRTSPUDPPort
		c.UDPPort = &p
	}
	c.setTuningDefaults()
}

// setTuningDefaults fills what has no meaningful zero, leaving the listen
// address and port alone (tests pass explicit values).
func (c *RTSPConfig) setTuningDefaults() {
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultRTSPReadTimeout
	}
	if c.PullTransport == "" {
		c.PullTransport = "tcp"
	}
	if c.PullRetryMin == 0 {
		c.PullRetryMin = DefaultRTSPPullRetryMin
	}
	if c.PullRetryMax == 0 {
		c.PullRetryMax = DefaultRTSPPullRetryMax
	}
}

func (c RTSPConfig) udpPort() int {
	if c.UDPPort == nil {
		return 0
	}
	return *c.UDPPort
}

// Validate reports the first invalid field, named by its YAML key.
func (c RTSPConfig) Validate() error {
	if c.Listen == "" {
		return fmt.Errorf("rtsp.listen: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("rtsp.listen: %q is not host:port: %w", c.Listen, err)
	}
	if p := c.udpPort(); p < 0 || p > 65534 || p%2 != 0 {
		return fmt.Errorf("rtsp.udp_port: must be an even port 0-65534 (RTCP uses the next one; 0 = TCP only), got %d", p)
	}
	if c.ReadTimeout < 0 {
		return fmt.Errorf("rtsp.read_timeout: must not be negative")
	}
	switch c.PullTransport {
	case "", "tcp", "udp":
	default:
		return fmt.Errorf("rtsp.pull_transport: must be tcp or udp, got %q", c.PullTransport)
	}
	if c.PullRetryMin < 0 || c.PullRetryMax < 0 {
		return fmt.Errorf("rtsp.pull_retry_min, rtsp.pull_retry_max: must not be negative")
	}
	if c.PullRetryMin > 0 && c.PullRetryMax > 0 && c.PullRetryMax < c.PullRetryMin {
		return fmt.Errorf("rtsp.pull_retry_max: must be at least rtsp.pull_retry_min")
	}
	return c.Limits.Validate()
}
