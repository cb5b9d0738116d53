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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"liveroom/room"
	"liveroom/web"
)

// serveFlags are the command-line overrides of the config file.
func parseServeFlags(args []string, stderr io.Writer, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML); default: built-in defaults")
	httpAddr := fs.String("http", "", "HTTP listen address (http.listen)")
	rtspAddr := fs.String("rtsp", "", "RTSP listen address (rtsp.listen)")
	rtspUDP := fs.Int("rtsp-udp", 0, "RTSP RTP port, RTCP = +1; 0 = TCP only (rtsp.udp_port)")
	webrtcPort := fs.Int("webrtc-port", 0, "WebRTC UDP/TCP port (webrtc.port)")
	dataDir := fs.String("data-dir", "", "data directory (data_dir)")
	redisURL := fs.String("redis", "", "Redis URL: cluster mode (redis.url)")
	nodeID := fs.String("node-id", "", "node id (node.id)")
	advertise := fs.String("advertise-url", "", "base URL other nodes reach this one at (node.advertise_url)")
	dev := fs.Bool("dev", false, "seed a demo room and print URLs with tokens")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfigFile(*cfgPath)
	if err != nil {
		return cfg, err
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return cfg, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "http":
			cfg.HTTP.Listen = *httpAddr
		case "rtsp":
			cfg.RTSP.Listen = *rtspAddr
		case "rtsp-udp":
			cfg.RTSP.UDPPort = rtspUDP
		case "webrtc-port":
			cfg.WebRTC.Port = *webrtcPort
		case "data-dir":
			cfg.DataDir = *dataDir
		case "redis":
			cfg.Redis.URL = *redisURL
		case "node-id":
			cfg.Node.ID = *nodeID
		case "advertise-url":
			cfg.Node.AdvertiseURL = *advertise
		case "dev":
			cfg.Dev = *dev
		}
	})
	cfg.setDefaults()
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
	secretsPath, generated, err := ensureSecrets(&cfg.Auth, cfg.DataDir)
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
	if n.cluster == nil {
		// In a cluster another node may be streaming a live room.
		resetLive(ctx, n.rooms, log)
	}
	if n.cluster == nil {
		n.startPulls(ctx) // in a cluster, one node per source (mediaCluster)
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		n.stop(context.Background())
		return fmt.Errorf("http.listen: %w", err)
	}
	drainer := web.NewDrain(cfg.Node.ID)
	srv := &http.Server{Handler: drainer.Wrap(n.web), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	n.advertise = advertiseURL(cfg.Node.AdvertiseURL, ln.Addr())
	udp, tcp := n.sfu.Addr()
	log.Info("liveroom serving", "http", ln.Addr().String(), "webrtc_udp", udp.String(), "webrtc_tcp", tcp.String(), "data_dir", cfg.DataDir, "node", cfg.Node.ID, "cluster", cfg.Redis.URL != "")

	if cfg.Dev {
		if err := seedDemo(ctx, cfg, n, ln.Addr(), stdout); err != nil {
			log.Error("dev seed", "err", err)
		}
	}

	n.start()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), errTerminated) {
			// A second signal kills the process: no context needed here.
			drain(context.Background(), drainer, n.hub, n.sfu, cfg.Node.ID, cfg.HTTP.DrainWait, cfg.HTTP.DrainTimeout, log)
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

// resetLive marks rooms that were live when the node stopped as scheduled:
// nobody is publishing to a node that just started.
func resetLive(ctx context.Context, rooms room.Store, log *slog.Logger) {
	list, err := rooms.List(ctx)
	if err != nil {
		return
	}
	for _, r := range list {
		if r.Status == room.StatusLive {
			if _, err := rooms.Update(ctx, r.ID, func(r *room.Room) error { r.Status = room.StatusScheduled; return nil }); err != nil {
				log.Warn("reset live room", "room", r.ID, "err", err)
			}
		}
	}
}

// advertiseURL is the base URL other nodes reach this one at: the
// configured one, else the listener's address (127.0.0.1 for an
// unspecified host, which only works while the nodes share a machine).
func advertiseURL(configured string, addr net.Addr) string {
	if configured != "" {
		return strings.TrimRight(configured, "/")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}
