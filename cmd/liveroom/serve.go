package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"liveroom/room"
	"liveroom/web"
)

// serveFlags binds the command line to c, the config it overrides, and
// returns --config.
func serveFlags(fs *flag.FlagSet, c *Config) *string {
	path := fs.String("config", "", "config file (YAML); default: built-in defaults")
	fs.StringVar(&c.HTTP.Listen, "http", c.HTTP.Listen, "HTTP listen address (http.listen)")
	fs.StringVar(&c.RTSP.Listen, "rtsp", c.RTSP.Listen, "RTSP listen address (rtsp.listen)")
	fs.Func("rtsp-udp", "RTSP RTP port, RTCP = +1; 0 = TCP only (rtsp.udp_port)", func(v string) error {
		n, err := strconv.Atoi(v)
		c.RTSP.UDPPort = &n
		return err
	})
	fs.StringVar(&c.RTMP.Address, "rtmp", c.RTMP.Address, `RTMP listen address; "" = off (rtmp.address)`)
	fs.StringVar(&c.RTMPS.Address, "rtmps", c.RTMPS.Address, `RTMPS listen address, with --rtmps-cert and --rtmps-key; "" = off (rtmps.address)`)
	fs.StringVar(&c.RTMPS.Cert, "rtmps-cert", c.RTMPS.Cert, "RTMPS certificate chain, PEM (rtmps.cert)")
	fs.StringVar(&c.RTMPS.Key, "rtmps-key", c.RTMPS.Key, "RTMPS private key, PEM (rtmps.key)")
	fs.StringVar(&c.SRT.Address, "srt", c.SRT.Address, "SRT (UDP) listen address; empty = off (srt.address)")
	fs.IntVar(&c.WebRTC.Port, "webrtc-port", c.WebRTC.Port, "WebRTC UDP/TCP port (webrtc.port)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (data_dir)")
	fs.StringVar(&c.Redis.URL, "redis", c.Redis.URL, "Redis URL: cluster mode (redis.url)")
	fs.StringVar(&c.Node.ID, "node-id", c.Node.ID, "node id (node.id)")
	fs.StringVar(&c.Node.AdvertiseURL, "advertise-url", c.Node.AdvertiseURL, "base URL other nodes reach this one at (node.advertise_url)")
	fs.BoolVar(&c.Dev, "dev", c.Dev, "seed a demo room and print URLs with tokens")
	return path
}

// parseServeFlags: the command line overrides the environment, which
// overrides the config file, so the command line is parsed twice: for
// --config, then over the config read.
func parseServeFlags(args []string, stderr io.Writer, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := serveFlags(fs, &Config{})
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var bad error
	cfg, err := readConfig(*path, getenv, func(c *Config) {
		again := flag.NewFlagSet("serve", flag.ContinueOnError)
		serveFlags(again, c)
		bad = again.Parse(args)
	})
	if err = errors.Join(err, bad); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseServeFlags(args, stderr, getenv)
	if err != nil {
		return err
	}
	log := cfg.Log.logger(stderr)
	if cfg.Redis.URL != "" && (cfg.Auth.JWTSecret == "" || cfg.Auth.AdminKey == "") {
		// A node that made up its own secrets would reject every other
		// node's tokens.
		return errors.New("auth.jwt_secret and auth.admin_key: cluster mode (redis.url) needs them set, the same on every node")
	}
	secretsPath, generated, err := room.LoadSecrets(&cfg.Auth, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if generated {
		log.Info("admin key generated (set auth.admin_key or LIVEROOM_ADMIN_KEY to choose one)", "file", secretsPath)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	n, err := buildNode(cfg, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		n.stop(context.Background())
		return fmt.Errorf("http.listen: %w", err)
	}
	if cfg.HTTP.ProxyProtocol {
		ln = web.ProxyListener(ln, cfg.HTTP.ClientAddrs(), cfg.HTTP.ProxyHeaderTimeout)
	}
	drainer := web.NewDrain(cfg.Node.ID)
	srv := &http.Server{Handler: drainer.Wrap(n.web), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	n.advertise = cfg.Node.Advertise(ln.Addr())
	udp, tcp := n.sfu.Addr()
	log.Info("liveroom serving", "http", ln.Addr().String(), "webrtc_udp", udp.String(), "webrtc_tcp", tcp.String(), "data_dir", cfg.DataDir, "node", cfg.Node.ID, "cluster", cfg.Redis.URL != "")

	if cfg.Dev {
		if err := n.web.SeedDemo(ctx, ln.Addr(), cfg.Auth.AdminKey, stdout); err != nil {
			log.Error("dev seed", "err", err)
		}
		devAudioCheck(stdout, log)
	}

	n.start()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), errTerminated) {
			// A second signal kills the process: no context needed here.
			drainer.Run(context.Background(), web.DrainDeps{Hub: n.hub, Media: n.sfu, Wait: cfg.HTTP.DrainWait, Timeout: cfg.HTTP.DrainTimeout, Log: log})
		}
		log.Info("shutting down")
	}
	// Stop accepting, let short requests finish, then close every peer and
	// WebSocket (clients are told the node is going away) and the stores.
	httpCtx, cancelHTTP := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancelHTTP()
	_ = srv.Shutdown(httpCtx)
	// Media gets its own time, whatever the HTTP drain took.
	nodeCtx, cancelNode := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelNode()
	n.stop(nodeCtx)
	log.Info("stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
