package media_test

import (
	"strings"
	"testing"
	"time"

	"liveroom/media"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigDefaults(t *testing.T) {
	var c media.Config
	c.SetDefaults()
	if c.Port != 8443 || c.ICETCP == nil || !*c.ICETCP || c.PLIInterval != 200*time.Millisecond || c.ViewerQueue == 0 || c.NACKHistory == 0 {
		t.Errorf("SetDefaults: got %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		mut     func(*media.Config)
		wantKey string // "" = valid
	}{
		{"zero port picks a free one", func(c *media.Config) { c.Port = 0 }, ""},
		{"port too big", func(c *media.Config) { c.Port = 70000 }, "webrtc.port"},
		{"negative port", func(c *media.Config) { c.Port = -1 }, "webrtc.port"},
		{"bad listen ip", func(c *media.Config) { c.ListenIP = "localhost" }, "webrtc.listen_ip"},
		{"bad nat ip", func(c *media.Config) { c.NAT1To1IPs = []string{"1.2.3.4", "nope"} }, "webrtc.nat_1to1_ips[1]"},
		{"ice server without urls", func(c *media.Config) { c.ICEServers = []media.ICEServer{{}} }, "webrtc.ice_servers[0].urls"},
		{"ice server bad scheme", func(c *media.Config) {
			c.ICEServers = []media.ICEServer{{URLs: []string{"http://x"}}}
		}, "webrtc.ice_servers[0].urls[0]"},
		{"turn without credentials", func(c *media.Config) {
			c.ICEServers = []media.ICEServer{{URLs: []string{"turn:turn.example.com:3478"}}}
		}, "webrtc.ice_servers[0]"},
		{"stun ok", func(c *media.Config) {
			c.ICEServers = []media.ICEServer{{URLs: []string{"stun:stun.example.com:3478"}}}
		}, ""},
		{"negative pli interval", func(c *media.Config) { c.PLIInterval = -time.Second }, "webrtc.pli_interval"},
		{"queue too big", func(c *media.Config) { c.ViewerQueue = 1 << 20 }, "webrtc.viewer_queue"},
		{"history too big", func(c *media.Config) { c.NACKHistory = 1 << 20 }, "webrtc.nack_history"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg media.Config
			cfg.SetDefaults()
			c.mut(&cfg)
			err := cfg.Validate()
			switch {
			case c.wantKey == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case c.wantKey != "" && (err == nil || !strings.HasPrefix(err.Error(), c.wantKey+":")):
				t.Errorf("got %v, want an error naming %s", err, c.wantKey)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := media.New(media.Config{Port: -5}, media.Options{}); err == nil {
		t.Fatal("New with port -5: got nil error")
	}
}

func TestTwoSFUsOneProcess(t *testing.T) {
	a, b := newSFU(t), newSFU(t)
	ua, _ := a.Addr()
	ub, _ := b.Addr()
	if ua.String() == ub.String() {
		t.Errorf("two SFUs share %s", ua)
	}
	// The same registry twice is refused, not silently merged.
	reg := prometheus.NewRegistry()
	s1, err := media.New(media.Config{ListenIP: "127.0.0.1"}, media.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Shutdown(t.Context())
	if s2, err := media.New(media.Config{ListenIP: "127.0.0.1"}, media.Options{Registerer: reg}); err == nil {
		s2.Shutdown(t.Context())
		t.Errorf("second SFU on the same registerer: got nil error, want a duplicate registration error")
	}
}
