package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/media"
	"liveroom/room"
	"liveroom/web"
)

// node is one liveroom server's components, built from the config. It is
// the only place that knows which implementation of each seam is in use.
type node struct {
	cfg    Config
	log    *slog.Logger
	auth   *room.Auth
	rooms  room.Store
	hub    *room.Hub
	chat   *chat.Service
	store  cart.Store
	cart   *cart.Service
	outbox *cart.Outbox
	sfu    *media.SFU
	life   *lifecycle
	web    *web.Server

	cluster   *cluster      // nil on a single node
	edges     *mediaCluster // media across nodes; nil on a single node
	advertise string        // base URL other nodes and the registry know this node by
	gatherer  prometheus.Gatherer

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// buildNode wires a node: on its own, file-backed rooms, the memory bus,
// memory chat state and bbolt-backed commerce; with redis.url, the Redis
// implementations of each (node_redis.go).
func buildNode(cfg Config, reg *prometheus.Registry, log *slog.Logger) (_ *node, err error) {
	n := &node{cfg: cfg, log: log, gatherer: reg}
	defer func() {
		if err != nil { // release what was built: sockets, stores
			n.closeMedia()
			n.close()
		}
	}()
	if n.auth, err = room.NewAuth(cfg.Auth); err != nil {
		return nil, err
	}
	var bus room.Bus
	chatDeps := chat.Deps{Log: log.With("component", "chat"), Metrics: reg}
	if cfg.Redis.URL != "" {
		if n.cluster, err = openCluster(cfg, log); err != nil {
			return nil, err
		}
		n.rooms, bus = n.cluster.rooms, n.cluster.bus
		cs := n.cluster.chat
		chatDeps.History, chatDeps.Held, chatDeps.Sanctions, chatDeps.Rules, chatDeps.Audit = cs, cs, cs, cs, cs.Audit()
	} else {
		if n.rooms, err = room.OpenFileStore(cfg.DataDir); err != nil {
			return nil, err
		}
		bus = room.NewMemoryBus(cfg.Hub.HistorySize)
		if chatDeps.Audit, err = chat.OpenFileAudit(filepath.Join(cfg.DataDir, "audit")); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		// Bans, timeouts, slow mode and terms survive a restart.
		cs, err := chat.OpenFileState(filepath.Join(cfg.DataDir, "chat"), cfg.Chat.HistorySize, cfg.Chat.HeldMax)
		if err != nil {
			return nil, fmt.Errorf("chat state: %w", err)
		}
		chatDeps.History, chatDeps.Held, chatDeps.Sanctions, chatDeps.Rules = cs, cs, cs, cs
	}
	if n.hub, err = room.NewHub(cfg.Hub, room.HubDeps{Auth: n.auth, Rooms: n.rooms, Bus: bus, Log: log.With("component", "hub"), Metrics: reg}); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	chatDeps.Hub, chatDeps.Rooms = n.hub, n.rooms
	if n.chat, err = chat.New(cfg.Chat, chatDeps); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}

	metrics, err := cart.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	if n.cluster != nil {
		n.store = n.cluster.store
	} else {
		local, err := cart.OpenLocal(filepath.Join(cfg.DataDir, "cart"), cfg.Cart)
		if err != nil {
			return nil, fmt.Errorf("cart store: %w", err)
		}
		n.store = local
	}
	clog := log.With("component", "cart")
	if n.cart, err = cart.NewService(n.store, cfg.Cart, cart.ServiceOptions{Metrics: metrics, Log: clog}); err != nil {
		return nil, err
	}
	cart.AttachWS(n.hub, n.cart, clog)
	if n.outbox, err = cart.NewOutbox(n.store, cfg.Webhooks, cart.OutboxOptions{Metrics: metrics, Log: log.With("component", "webhooks")}); err != nil {
		return nil, err
	}
	n.cart.OnOrder(func(cart.Order) { n.outbox.Wake() })

	n.life = newLifecycle(n.rooms, log)
	// The lifecycle stores the status itself (in a cluster, only while no
	// other node is the origin) and then has the hub announce it.
	n.life.notify = func(ctx context.Context, roomID string, live bool) {
		if err := n.hub.AnnounceLive(ctx, roomID, live); err != nil {
			log.Warn("room live event", "room", roomID, "err", err)
		}
	}
	if n.sfu, err = media.New(cfg.WebRTC, media.Options{Logger: log, Registerer: reg, OnLive: n.life.onLive}); err != nil {
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	// RTSP ingest and read; closed by the SFU's Shutdown.
	rtsp, err := n.sfu.ServeRTSP(cfg.RTSP, media.RTSPDeps{Auth: newRTSPAuth(n.auth, n.rooms), Notice: n.notice})
	if err != nil {
		return nil, fmt.Errorf("rtsp: %w", err)
	}
	rtspPort := 0
	if a, ok := rtsp.Addr().(*net.TCPAddr); ok {
		rtspPort = a.Port
	}
	wd := web.Deps{
		Auth: n.auth, Rooms: n.rooms, Media: n.sfu, Hub: n.hub, ModLog: n.chat, Catalog: n.store,
		RTSPPort: rtspPort, Gatherer: reg, Logger: log.With("component", "web"),
	}
	// /readyz: no usable WebRTC address (and, in a cluster, Redis down)
	// makes the node not ready; it keeps running either way.
	wd.Ready = n.sfu.Ready
	if n.cluster != nil {
		wd.Ready = func(ctx context.Context) error {
			if err := n.sfu.Ready(ctx); err != nil {
				return err
			}
			return n.cluster.ready(ctx)
		}
		secret := clusterSecret(cfg)
		n.edges = newMediaCluster(cfg.Node.ID, secret, n.sfu, n.cluster.origins, n.cluster.registry, n.rooms, log)
		n.edges.notify = func(ctx context.Context, roomID string, live bool) {
			if err := n.hub.SetLive(ctx, roomID, live); err != nil {
				log.Warn("room live event", "room", roomID, "err", err)
			}
		}
		n.life.origin, n.life.liveElsewhere = n.edges.live, n.edges.liveElsewhere
		wd.ClusterSecret, wd.OnWatch, wd.OnSource = secret, n.edges.watched, n.edges.sourceChanged
	}
	n.web = web.New(cfg.HTTP, wd)
	return n, nil
}

// notice tells a room's hosts something about their stream (a track a
// browser cannot play). It must not block the media path.
func (n *node) notice(roomID, message string) {
	n.log.Warn("stream notice", "room", roomID, "notice", message)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ev, err := room.NewEvent("stream.notice", map[string]string{"message": message})
		if err == nil {
			_ = n.hub.SendRole(ctx, roomID, room.RoleHost, ev)
		}
	}()
}

// startPulls starts pulling every room that names an RTSP source.
func (n *node) startPulls(ctx context.Context) {
	list, err := n.rooms.List(ctx)
	if err != nil {
		n.log.Warn("list rooms for pulls", "err", err)
		return
	}
	for _, r := range list {
		if r.Source != "" {
			if err := n.sfu.StartPull(r.ID, r.Source); err != nil {
				n.log.Warn("rtsp pull", "room", r.ID, "err", err)
			}
		}
	}
}

// start runs the node's background workers until stop.
func (n *node) start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	run := func(name string, f func(context.Context) error) {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				n.log.Error("worker stopped", "worker", name, "err", err)
			}
		}()
	}
	run("hub", n.hub.Run)
	run("cart", n.cart.Run)
	run("webhooks", n.outbox.Run)
	run("lifecycle", func(ctx context.Context) error { n.life.run(ctx); return nil })
	if n.cluster != nil {
		run("registry", func(ctx context.Context) error { n.cluster.beat(ctx, n, n.gatherer); return nil })
		run("edges", func(ctx context.Context) error { n.edges.run(ctx); return nil })
	}
}

// stop closes the media peers, tells WebSocket clients the node is going
// away (hub.Run's exit), stops the workers and closes the stores.
func (n *node) stop(ctx context.Context) {
	if n.sfu != nil {
		if err := n.sfu.Shutdown(ctx); err != nil {
			n.log.Warn("media shutdown", "err", err)
		}
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	n.close()
}

// closeMedia shuts the SFU down when building the node failed half-way.
func (n *node) closeMedia() {
	if n.sfu != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.sfu.Shutdown(ctx)
	}
}

func (n *node) close() {
	if n.cluster != nil {
		n.cluster.close() // closes the cart store too
		return
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.log.Warn("cart store close", "err", err)
		}
	}
}
