package media

import (
	"fmt"
	"net"
	"time"
)

// RTMPConfig is the RTMP ingest's configuration; cmd composes it under the
// YAML key `rtmp:` (and RTMPSConfig under `rtmps:`). Like Config,
// SetDefaults runs before the YAML is decoded.
type RTMPConfig struct {
	// Address is the plain RTMP (TCP) listen address; "" = no RTMP.
	Address string `yaml:"address"`
	// ReadTimeout ends a connection that sends nothing for this long
	// (handshake included).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// Limits cap RTMP and RTMPS connections, counted from accept, per
	// client address (IPv6 by /64) and per node; 0 = no limit. A
	// connection past a cap is closed before the handshake.
	Limits RTMPLimits `yaml:"limits"`
}

// RTMPLimits cap RTMP connections (RTMPS included).
type RTMPLimits struct {
	ConnsPerAddress int `yaml:"conns_per_address"`
	ConnsPerNode    int `yaml:"conns_per_node"`
}

// RTMPSConfig is RTMP over TLS on its own port; it runs when Address,
// Cert and Key are all set.
type RTMPSConfig struct {
	Address string `yaml:"address"`
	// Cert and Key are PEM files (a certificate chain and its private key).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// RTMP defaults.
const (
	DefaultRTMPAddress         = ":1935"
	DefaultRTMPSAddress        = ":1936"
	DefaultRTMPReadTimeout     = 10 * time.Second
	DefaultRTMPConnsPerAddress = 10
	DefaultRTMPConnsPerNode    = 200
)

// SetDefaults fills every field (before the YAML is decoded: values there
// win, "" turns the listener off and a 0 cap means no limit).
func (c *RTMPConfig) SetDefaults() {
	*c = RTMPConfig{
		Address:     DefaultRTMPAddress,
		ReadTimeout: DefaultRTMPReadTimeout,
		Limits:      RTMPLimits{ConnsPerAddress: DefaultRTMPConnsPerAddress, ConnsPerNode: DefaultRTMPConnsPerNode},
	}
}

// SetDefaults fills the RTMPS address; without a certificate it stays off.
func (c *RTMPSConfig) SetDefaults() { *c = RTMPSConfig{Address: DefaultRTMPSAddress} }

// Enabled reports whether RTMPS should listen.
func (c RTMPSConfig) Enabled() bool { return c.Address != "" && c.Cert != "" && c.Key != "" }

// Validate reports the first invalid field, named by its YAML key.
func (c RTMPConfig) Validate() error {
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("rtmp.address: %q is not host:port: %w", c.Address, err)
		}
	}
	if c.ReadTimeout < 0 {
		return fmt.Errorf("rtmp.read_timeout: must not be negative")
	}
	if c.Limits.ConnsPerAddress < 0 || c.Limits.ConnsPerNode < 0 {
		return fmt.Errorf("rtmp.limits: caps must not be negative (0 = no limit)")
	}
	return nil
}

// Validate reports the first invalid field, named by its YAML key.
func (c RTMPSConfig) Validate() error {
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("rtmps.address: %q is not host:port: %w", c.Address, err)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return fmt.Errorf("rtmps.cert, rtmps.key: set both or neither")
	}
	return nil
}
