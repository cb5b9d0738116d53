package media

import (
	"fmt"
	"net"
	"time"
)

// SRTConfig is the SRT ingest configuration; cmd composes it under the YAML
// key `srt:`. Unlike RTSP, an empty address turns the listener off, so the
// defaults are applied before the YAML is decoded (SetDefaults).
type SRTConfig struct {
	// Address is the SRT (UDP) listen address; "" = no SRT ingest.
	Address string `yaml:"address"`
	// Passphrase, if set, is required of every SRT publisher (AES, 10-79
	// characters as SRT demands).
	Passphrase string `yaml:"passphrase"`
	// Latency is the SRT receive latency (the peer's, if larger, wins).
	Latency time.Duration `yaml:"latency"`
	// ReadTimeout ends a publisher that sends no MPEG-TS this long (SRT
	// keepalives alone do not count).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// ConnectionsPerAddress and ConnectionsPerNode cap SRT connections
	// (handshakes being authorized and publishers) per client IP (IPv6 by
	// /64) and per node. 0 = no limit.
	ConnectionsPerAddress int `yaml:"connections_per_address"`
	ConnectionsPerNode    int `yaml:"connections_per_node"`
}

// SRT defaults.
const (
	DefaultSRTAddress               = ":8890"
	DefaultSRTLatency               = 120 * time.Millisecond
	DefaultSRTReadTimeout           = 10 * time.Second
	DefaultSRTConnectionsPerAddress = 10
	DefaultSRTConnectionsPerNode    = 200
)

// SetDefaults fills every field but the passphrase (before the YAML is
// decoded: an empty address or a 0 cap there wins).
func (c *SRTConfig) SetDefaults() {
	*c = SRTConfig{
		Address:               DefaultSRTAddress,
		Latency:               DefaultSRTLatency,
		ReadTimeout:           DefaultSRTReadTimeout,
		ConnectionsPerAddress: DefaultSRTConnectionsPerAddress,
		ConnectionsPerNode:    DefaultSRTConnectionsPerNode,
	}
}

// Validate reports the first invalid field, named by its YAML key.
func (c SRTConfig) Validate() error {
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("srt.address: %q is not host:port: %w", c.Address, err)
		}
	}
	if n := len(c.Passphrase); n != 0 && (n < 10 || n > 79) {
		return fmt.Errorf("srt.passphrase: must be 10 to 79 characters (SRT's rule), got %d", n)
	}
	if c.Latency < 0 || c.ReadTimeout < 0 {
		return fmt.Errorf("srt.latency, srt.read_timeout: must not be negative")
	}
	if c.ConnectionsPerAddress < 0 || c.ConnectionsPerNode < 0 {
		return fmt.Errorf("srt.connections_per_address, srt.connections_per_node: must not be negative (0 = no limit)")
	}
	return nil
}
