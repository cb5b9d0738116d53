package media

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the media (SFU) configuration; cmd composes it under the YAML key
// `webrtc:`.
//
// SetDefaults is meant to run before the YAML is decoded so that values in the
// file win; in particular `port: 0` from a file (or a zero Port from a test)
// reaches New and means "pick a free port".
type Config struct {
	// Port is the one UDP port for all ICE (UDP mux); ICE-TCP listens on the
	// same number. 0 = pick a free one.
	Port int `yaml:"port"`
	// ListenIP binds the listeners to one address, fixed at startup; "" =
	// every usable interface address, following the host's addresses as
	// they come and go (see Interfaces, Addresses).
	ListenIP string `yaml:"listen_ip"`
	// Interfaces and Addresses restrict media, when ListenIP is "", to the
	// addresses of these interfaces (names or shell patterns, e.g. "eth*")
	// and within these addresses or CIDR networks; empty = no restriction.
	// Link-local and tentative addresses are never used; loopback only
	// when named exactly (interface "lo", or a 127.x/::1 address).
	Interfaces []string `yaml:"interfaces"`
	Addresses  []string `yaml:"addresses"`
	// AddressRefresh is how often the interface addresses are re-read
	// (Linux also applies changes as the kernel announces them); 0 = 5s.
	AddressRefresh time.Duration `yaml:"address_refresh"`
	// NAT1To1IPs are public IPs announced instead of the local host addresses
	// (behind a 1:1 NAT, in containers).
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// ICEServers are handed to clients (WHIP/WHEP Link headers). The server
	// runs full ICE but only gathers host candidates (its public address is
	// known, or set with NAT1To1IPs), so it does not use them itself.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// ICETCP enables ICE-TCP (passive) on Port; nil = true.
	ICETCP *bool `yaml:"ice_tcp"`

	// PLIInterval is how long a keyframe request sent to the publisher is
	// waited for before another is sent; viewers joining meanwhile wait for
	// its keyframe. A viewer that missed the start of a keyframe asks again
	// at once (see keyframeThrottle for the caps).
	PLIInterval time.Duration `yaml:"pli_interval"`
	// ViewerQueue is the per-viewer packet queue; a viewer whose queue is full
	// drops and then skips to the next keyframe.
	ViewerQueue int `yaml:"viewer_queue"`
	// NACKHistory is how many recent video packets per room are kept to answer
	// viewers' NACKs (audio keeps a quarter). Rounded up to a power of two.
	NACKHistory int `yaml:"nack_history"`
	// ICEDisconnectedTimeout and ICEFailedTimeout bound how long a silent peer
	// is kept: after the failed timeout its session is closed.
	ICEDisconnectedTimeout time.Duration `yaml:"ice_disconnected_timeout"`
	ICEFailedTimeout       time.Duration `yaml:"ice_failed_timeout"`
	// ConnectTimeout closes a session whose client got its answer but never
	// connected, whatever ICE's own timeouts make of a peer that never sent a
	// single check.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Limits cap sessions per client address, room and node (limits.go).
	Limits Limits `yaml:"limits"`
}

// ICEServer is a STUN/TURN server handed to clients.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// Defaults. Port 8443 is only applied by SetDefaults (0 means "any" to New).
const (
	DefaultPort                   = 8443
	DefaultPLIInterval            = 200 * time.Millisecond
	DefaultViewerQueue            = 512
	DefaultNACKHistory            = 512
	DefaultICEDisconnectedTimeout = 5 * time.Second
	DefaultICEFailedTimeout       = 15 * time.Second
	DefaultConnectTimeout         = 10 * time.Second
	DefaultAddressRefresh         = 5 * time.Second
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ICETCP == nil {
		t := true
		c.ICETCP = &t
	}
	c.Limits.SetDefaults()
	c.setTuningDefaults()
}

// setTuningDefaults fills the fields New needs but that have no meaningful
// zero, leaving Port alone.
func (c *Config) setTuningDefaults() {
	if c.PLIInterval == 0 {
		c.PLIInterval = DefaultPLIInterval
	}
	if c.ViewerQueue == 0 {
		c.ViewerQueue = DefaultViewerQueue
	}
	if c.NACKHistory == 0 {
		c.NACKHistory = DefaultNACKHistory
	}
	if c.ICEDisconnectedTimeout == 0 {
		c.ICEDisconnectedTimeout = DefaultICEDisconnectedTimeout
	}
	if c.ICEFailedTimeout == 0 {
		c.ICEFailedTimeout = DefaultICEFailedTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.AddressRefresh == 0 {
		c.AddressRefresh = DefaultAddressRefresh
	}
}

func (c Config) iceTCP() bool { return c.ICETCP == nil || *c.ICETCP }

func (c Config) addressRefresh() time.Duration {
	if c.AddressRefresh <= 0 {
		return DefaultAddressRefresh
	}
	return c.AddressRefresh
}

// addressGrace is how long the socket of a vanished address is kept, in
// case the address comes back (a flapping link, a DHCP renewal): as long as
// a session on it would survive the silence.
func (c Config) addressGrace() time.Duration {
	return max(c.ICEFailedTimeout, DefaultICEFailedTimeout)
}

// Validate reports the first invalid field, named by its YAML key.
func (c Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("webrtc.port: must be 0..65535, got %d", c.Port)
	}
	if c.ListenIP != "" && net.ParseIP(c.ListenIP) == nil {
		return fmt.Errorf("webrtc.listen_ip: %q is not an IP address", c.ListenIP)
	}
	if c.ListenIP != "" && (len(c.Interfaces) > 0 || len(c.Addresses) > 0) {
		return fmt.Errorf("webrtc.listen_ip: set either listen_ip or interfaces/addresses, not both")
	}
	if _, err := newAddrFilter(c); err != nil {
		return err
	}
	if c.AddressRefresh < 0 {
		return fmt.Errorf("webrtc.address_refresh: must not be negative")
	}
	for i, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("webrtc.nat_1to1_ips[%d]: %q is not an IP address", i, ip)
		}
	}
	for i, s := range c.ICEServers {
		if len(s.URLs) == 0 {
			return fmt.Errorf("webrtc.ice_servers[%d].urls: must not be empty", i)
		}
		for j, u := range s.URLs {
			if !validICEURL(u) {
				return fmt.Errorf("webrtc.ice_servers[%d].urls[%d]: %q must start with stun:, stuns:, turn: or turns:", i, j, u)
			}
			if strings.HasPrefix(u, "turn") && (s.Username == "" || s.Credential == "") {
				return fmt.Errorf("webrtc.ice_servers[%d]: a TURN server needs username and credential", i)
			}
		}
	}
	if c.PLIInterval < 0 {
		return fmt.Errorf("webrtc.pli_interval: must not be negative")
	}
	if c.ViewerQueue < 0 || c.ViewerQueue > 1<<16 {
		return fmt.Errorf("webrtc.viewer_queue: must be 0..65536 (0 = default), got %d", c.ViewerQueue)
	}
	if c.NACKHistory < 0 || c.NACKHistory > 1<<15 {
		return fmt.Errorf("webrtc.nack_history: must be 0..32768 (0 = default), got %d", c.NACKHistory)
	}
	if c.ICEDisconnectedTimeout < 0 {
		return fmt.Errorf("webrtc.ice_disconnected_timeout: must not be negative")
	}
	if c.ICEFailedTimeout < 0 {
		return fmt.Errorf("webrtc.ice_failed_timeout: must not be negative")
	}
	if c.ConnectTimeout < 0 {
		return fmt.Errorf("webrtc.connect_timeout: must not be negative")
	}
	return c.Limits.Validate()
}

func validICEURL(u string) bool {
	for _, p := range []string{"stun:", "stuns:", "turn:", "turns:"} {
		if strings.HasPrefix(u, p) && len(u) > len(p) {
			return true
		}
	}
	return false
}
