package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/media"
	"liveroom/record"
	"liveroom/room"
	"liveroom/web"
)

// Config is the whole configuration file; each package owns its section.
type Config struct {
	HTTP     web.Config         `yaml:"http"`
	WebRTC   media.Config       `yaml:"webrtc"`
	RTSP     media.RTSPConfig   `yaml:"rtsp"`
	RTMP     media.RTMPConfig   `yaml:"rtmp"`
	RTMPS    media.RTMPSConfig  `yaml:"rtmps"`
	SRT      media.SRTConfig    `yaml:"srt"`
	Auth     room.AuthConfig    `yaml:"auth"`
	Hub      room.HubConfig     `yaml:"hub"`
	Chat     chat.Config        `yaml:"chat"`
	Cart     cart.Config        `yaml:"cart"`
	Webhooks cart.WebhookConfig `yaml:"webhooks"`
	Redis    room.RedisConfig   `yaml:"redis"`
	Rooms    room.RoomsConfig   `yaml:"rooms"`
	Node     room.NodeConfig    `yaml:"node"`
	Record   record.Config      `yaml:"record"`
	DataDir  string             `yaml:"data_dir"`
	Log      LogConfig          `yaml:"log"`
	// Dev seeds a demo room and prints URLs with tokens.
	Dev bool `yaml:"dev"`
}

// LogConfig is the `log:` section.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error; default info
	Format string `yaml:"format"` // text or json; default text
}

// defaultConfig is every package's defaults; the file is decoded over it.
func defaultConfig() Config {
	c := Config{Hub: room.DefaultHubConfig(), Chat: chat.DefaultConfig(), Rooms: room.DefaultRoomsConfig()}
	c.HTTP.SetDefaults()
	c.WebRTC.SetDefaults()
	c.RTSP.Limits.SetDefaults() // not in RTSP.SetDefaults: that one runs after the file too
	c.RTMP.SetDefaults()        // before the file only: "" there turns RTMP off
	c.RTMPS.SetDefaults()
	c.SRT.SetDefaults() // before the file: an empty srt.address turns SRT off
	c.Cart.SetDefaults()
	c.Webhooks.SetDefaults()
	return c
}

// loadConfig decodes YAML strictly over the defaults: an unknown key is an
// error naming it.
func loadConfig(r io.Reader) (Config, error) {
	c := defaultConfig()
	b, err := io.ReadAll(r)
	if err != nil {
		return c, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// readConfig is the file at path (or the defaults), then the LIVEROOM_*
// variables, then override (the command line), then the defaults of what
// none of them set.
func readConfig(path string, getenv func(string) string, override func(*Config)) (Config, error) {
	c := defaultConfig()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if c, err = loadConfig(f); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return c, err
	}
	override(&c)
	c.setDefaults()
	return c, nil
}

// applyEnv lets LIVEROOM_* variables override the file.
func (c *Config) applyEnv(getenv func(string) string) error {
	set := func(key string, dst *string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set("LIVEROOM_JWT_SECRET", &c.Auth.JWTSecret)
	set("LIVEROOM_ADMIN_KEY", &c.Auth.AdminKey)
	set("LIVEROOM_REDIS_URL", &c.Redis.URL)
	set("LIVEROOM_HTTP", &c.HTTP.Listen)
	set("LIVEROOM_PUBLIC_URL", &c.HTTP.PublicURL)
	set("LIVEROOM_DATA_DIR", &c.DataDir)
	set("LIVEROOM_NODE_ID", &c.Node.ID)
	set("LIVEROOM_ADVERTISE_URL", &c.Node.AdvertiseURL)
	set("LIVEROOM_CLUSTER_SECRET", &c.Node.ClusterSecret)
	if v := getenv("LIVEROOM_MAX_CONNS_PER_IP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("LIVEROOM_MAX_CONNS_PER_IP: must be a whole number >= 0")
		}
		c.Hub.MaxConnsPerIP = n
	}
	if v := getenv("LIVEROOM_TRUSTED_PROXIES"); v != "" { // comma-separated, like http.trusted_proxies
		c.HTTP.TrustedProxies = strings.Split(v, ",")
	}
	// What a container's operator knows only at run time: the public
	// address media is reached at, and the one to bind.
	set("LIVEROOM_WEBRTC_LISTEN_IP", &c.WebRTC.ListenIP)
	if v := getenv("LIVEROOM_WEBRTC_NAT_1TO1_IPS"); v != "" { // comma-separated, like webrtc.nat_1to1_ips
		c.WebRTC.NAT1To1IPs = strings.Split(v, ",")
	}
	return nil
}

// setDefaults fills in what neither the defaults, file, env nor flags set.
func (c *Config) setDefaults() {
	c.HTTP.SetDefaults()
	c.RTSP.SetDefaults()
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Record.Dir == "" {
		c.Record.Dir = filepath.Join(c.DataDir, "recordings")
	}
	c.Record.SetDefaults()
	c.Node.SetDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// validate checks every section; secrets are checked after they are
// loaded or generated (room.LoadSecrets).
func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	c.Hub.AllowedOrigins = c.HTTP.AllowedOrigins
	c.Hub.NodeID = c.Node.ID
	for _, section := range []interface{ Validate() error }{c.HTTP, c.WebRTC, c.RTSP, c.RTMP, c.RTMPS, c.SRT, c.Redis, c.Rooms, c.Node, c.Hub, c.Chat, c.Cart, c.Webhooks, c.Record} {
		if err := section.Validate(); err != nil {
			return err
		}
	}
	if _, err := c.Log.level(); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return errors.New("log.format: must be text or json")
	}
	return nil
}

func (l LogConfig) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return lv, errors.New("log.level: must be debug, info, warn or error")
	}
	return lv, nil
}

func (l LogConfig) logger(w io.Writer) *slog.Logger {
	lv, _ := l.level()
	opts := &slog.HandlerOptions{Level: lv}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
