package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"liveroom/chat"
	"liveroom/room"
)

// hubServerCmd serves the room hub and chat alone (memory bus, rooms in a
// temporary directory): GET /ws/{room}, GET /metrics, POST /api/v1/tokens,
// and POST /debug/gc (harness only: collect garbage before a memory reading).
// It is the harness for measuring the hub without media or the web layer;
// the real server exposes the same routes, so every workload runs against
// either.
func hubServerCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("hub-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	secret := fs.String("token-secret", "liveroom-load-secret-0123456789", "JWT secret")
	adminKey := fs.String("admin-key", "liveroom-load-admin-0123456789", "admin key for POST /api/v1/tokens")
	roomID := fs.String("room", "demo", "room to create")
	maxPerIP := fs.Int("max-conns-per-ip", 0, "hub.max_conns_per_ip (0 = no limit)")
	sendQueue := fs.Int("send-queue", room.DefaultHubConfig().SendQueue, "hub.send_queue")
	writeDelay := fs.Duration("write-delay", room.DefaultHubConfig().WriteDelay, "hub.write_delay (longest pause of the shared writers between passes, to pack frames)")
	chatRate := fs.Float64("chat-rate", chat.DefaultConfig().ChatRate, "chat.chat_rate (messages/s per user)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here on exit")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFileLimit(20000)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	auth, err := room.NewAuth(room.AuthConfig{JWTSecret: *secret, AdminKey: *adminKey})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "liveroom-hub-server")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := room.OpenFileStore(dir)
	if err != nil {
		return err
	}
	r, err := room.NewRoom(room.Room{ID: *roomID, Title: "Load test"}, time.Now())
	if err != nil {
		return err
	}
	if _, err := store.Create(ctx, r); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	hcfg := room.DefaultHubConfig()
	hcfg.MaxConnsPerIP, hcfg.SendQueue, hcfg.WriteDelay = *maxPerIP, *sendQueue, *writeDelay
	hub, err := room.NewHub(hcfg, room.HubDeps{Auth: auth, Rooms: store, Bus: room.NewMemoryBus(hcfg.HistorySize), Log: log, Metrics: reg})
	if err != nil {
		return err
	}
	ccfg := chat.DefaultConfig()
	ccfg.ChatRate = *chatRate
	if _, err := chat.New(ccfg, chat.Deps{Hub: hub, Rooms: store, Log: log, Metrics: reg}); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{room}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("room")
		if _, err := store.Get(r.Context(), id); err != nil {
			http.Error(w, "no such room", http.StatusNotFound)
			return
		}
		hub.ServeWS(w, r, id)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	// Harness only: lets `idle` measure live memory rather than garbage.
	mux.HandleFunc("POST /debug/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		if !auth.IsAdminKey(room.BearerToken(r.Header.Get("Authorization"))) {
			http.Error(w, `{"error":{"code":"unauthorized","message":"admin key required"}}`, http.StatusUnauthorized)
			return
		}
		var req struct{ Sub, Name, Role, Room, TTL string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			http.Error(w, `{"error":{"code":"bad_request","message":"bad JSON"}}`, http.StatusBadRequest)
			return
		}
		role, err := room.ParseRole(req.Role)
		ttl := 24 * time.Hour
		if req.TTL != "" {
			if ttl, err = time.ParseDuration(req.TTL); err != nil {
				http.Error(w, `{"error":{"code":"bad_request","message":"bad ttl"}}`, http.StatusBadRequest)
				return
			}
		}
		tok, err := auth.Mint(room.Identity{ID: req.Sub, Name: req.Name, Role: role, Room: req.Room}, ttl)
		if err != nil {
			http.Error(w, `{"error":{"code":"bad_request","message":"cannot mint"}}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan error, 1)
	go func() { hubDone <- hub.Run(hubCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	fmt.Fprintf(out, "hub-server: http://%s  room %s  token secret %q  admin key %q\n", ln.Addr(), *roomID, *secret, *adminKey)
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		stopHub()
		return err
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	stopHub()
	if err := <-hubDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
