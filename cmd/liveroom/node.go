package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/media"
	"liveroom/record"
	"liveroom/room"
	"liveroom/web"
)

// node is one liveroom server's components, built from the config and
// wired together; the backends (backends.go) are the only part that
// differs between one node and a cluster.
type node struct {
	cfg    Config
	log    *slog.Logger
	back   *backends
	auth   *room.Auth
	rooms  room.Store
	hub    *room.Hub
	cart   *cart.Service
	outbox *cart.Outbox
	// retired removes deleted rooms' incarnations after rooms.retired_retention.
	retired *room.RetiredSweeper
	sfu     *media.SFU
	edges   *media.Edges
	life    *room.Lifecycle
	rec     *record.Recorder  // records shows (record/)
	aac     *media.AACStreams // Opus -> AAC once per room (node_record.go)
	web     *web.Server

	advertise string   // base URL other nodes and the registry know this node by
	rtspAddr  net.Addr // RTSP listener
	rtmpAddr  net.Addr // RTMP listener; nil when off
	rtmpsAddr net.Addr // RTMPS listener; nil when off
	srtAddr   net.Addr // SRT listener; nil when off

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func buildNode(cfg Config, reg *prometheus.Registry, log *slog.Logger) (*node, error) {
	b, err := openBackends(cfg, log)
	if err != nil {
		return nil, err
	}
	return wireNode(cfg, reg, log, b)
}

// wireNode builds the components on b (closed by the node's stop).
func wireNode(cfg Config, reg *prometheus.Registry, log *slog.Logger, b *backends) (_ *node, err error) {
	n := &node{cfg: cfg, log: log, back: b}
	defer func() {
		if err != nil { // release what was built: sockets, stores
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.stop(ctx)
		}
	}()
	if n.auth, err = room.NewAuth(cfg.Auth); err != nil {
		return nil, err
	}
	n.rooms = b.rooms
	if n.hub, err = room.NewHub(cfg.Hub, room.HubDeps{Auth: n.auth, Rooms: b.rooms, Bus: b.bus, Log: log.With("component", "hub"), Metrics: reg}); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	cs, err := chat.New(cfg.Chat, chat.Deps{Hub: n.hub, Rooms: b.rooms, History: b.chat, Held: b.chat, Sanctions: b.chat, Rules: b.chat,
		Ranks: b.chat, Audit: b.audit, Log: log.With("component", "chat"), Metrics: reg,
		OnPost: func(ctx context.Context, roomID, userID string) { n.cart.NoteChat(ctx, roomID, userID) }}) // giveaway rule "chatted"; cart is built below
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if err := n.buildCart(reg); err != nil {
		return nil, err
	}

	// The SFU's live events reach the lifecycle, built just below with the SFU.
	onLive := func(roomID string, live bool) {
		n.life.OnLive(roomID, live)
		n.rec.OnLive(roomID, live)
	}
	if n.sfu, err = media.New(cfg.WebRTC, media.Options{Logger: log, Registerer: reg, OnLive: onLive}); err != nil {
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	n.edges = media.NewEdges(n.sfu, cfg.Node.ID, b.origins, web.NewEdgeClient(cfg.Node.ID, b.secret, b.registry).Signal)
	if n.life, err = room.NewLifecycle(room.LifecycleDeps{
		Node: cfg.Node.ID, Rooms: b.rooms, Origins: b.origins, Media: n.sfu, Moved: n.edges.Watch,
		Announce: n.hub.AnnounceLive, Log: log,
	}); err != nil {
		return nil, err
	}
	if err := n.buildRecorder(); err != nil {
		return nil, err
	}
	// RTSP ingest and read; closed by the SFU's Shutdown.
	rtsp, err := n.sfu.ServeRTSP(cfg.RTSP, media.RTSPDeps{Auth: web.NewRTSPAuth(n.auth, b.rooms), Notice: n.hub.StreamNotice})
	if err != nil {
		return nil, fmt.Errorf("rtsp: %w", err)
	}
	n.rtspAddr = rtsp.Addr()
	// RTMP/RTMPS ingest (each off with an empty address); closed by Shutdown.
	if cfg.RTMP.Address != "" || cfg.RTMPS.Enabled() {
		rtmp, err := n.sfu.ServeRTMP(cfg.RTMP, cfg.RTMPS, media.RTMPDeps{Auth: web.NewIngestAuth(n.auth, b.rooms), Notice: n.hub.StreamNotice})
		if err != nil {
			return nil, fmt.Errorf("rtmp: %w", err)
		}
		n.rtmpAddr, n.rtmpsAddr = rtmp.Addr(), rtmp.TLSAddr()
	}
	rtspPort := 0
	if a, ok := n.rtspAddr.(*net.TCPAddr); ok {
		rtspPort = a.Port
	}
	// SRT ingest (MPEG-TS); closed by the SFU's Shutdown. Empty address: off.
	if cfg.SRT.Address != "" {
		srtSrv, err := n.sfu.ServeSRT(cfg.SRT, media.SRTDeps{Auth: web.NewIngestAuth(n.auth, b.rooms), Notice: n.hub.StreamNotice})
		if err != nil {
			return nil, fmt.Errorf("srt: %w", err)
		}
		n.srtAddr = srtSrv.Addr()
	}
	// /readyz: no usable WebRTC address (and, in a cluster, Redis down)
	// makes the node not ready; it keeps running either way.
	ready := n.sfu.Ready
	if b.ready != nil {
		ready = func(ctx context.Context) error {
			if err := n.sfu.Ready(ctx); err != nil {
				return err
			}
			return b.ready(ctx)
		}
	}
	n.web = web.New(cfg.HTTP, web.Deps{
		Auth: n.auth, Rooms: b.rooms, WHIP: n.sfu, WHEP: n.sfu, HLS: n.sfu.NewHLS(media.HLSConfig{AAC: n.aac}), Edge: n.sfu, Hub: n.hub, ModLog: cs, Catalog: b.store, Webhooks: n.outbox, Orders: n.cart,
		RTSPPort: rtspPort, RTMPPort: tcpPort(n.rtmpAddr), SRTPort: udpPort(n.srtAddr), Gatherer: reg, Ready: ready, ReadyDetail: b.readyDetail, Logger: log.With("component", "web"),
		ClusterSecret: b.secret, OnWatch: n.edges.Watch, OnSource: n.life.SourceChanged, Giveaways: n.cart.Giveaways(),
		Shows: n.showLibrary(), ReplaySecret: replaySecret(cfg.Auth.JWTSecret),
	})
	return n, nil
}

// buildCart wires commerce: the service, its WebSocket messages and the
// order webhooks.
func (n *node) buildCart(reg prometheus.Registerer) error {
	metrics, err := cart.NewMetrics(reg)
	if err != nil {
		return err
	}
	clog := n.log.With("component", "cart")
	if n.cart, err = cart.NewService(n.back.store, n.cfg.Cart, cart.ServiceOptions{Metrics: metrics, Log: clog}); err != nil {
		return err
	}
	cws := cart.AttachWS(n.hub, n.cart, clog)
	cws.SetCheckoutURLs(func(ctx context.Context, roomID string) string { // a room's own checkout_url
		rm, err := n.back.rooms.Get(ctx, roomID)
		if err != nil {
			return ""
		}
		return rm.CheckoutURL
	})
	if n.outbox, err = cart.NewOutbox(n.back.store, n.cfg.Webhooks, cart.OutboxOptions{Metrics: metrics, Log: n.log.With("component", "webhooks")}); err != nil {
		return err
	}
	if rs, ok := n.back.rooms.(room.RetiredStore); ok {
		n.retired = &room.RetiredSweeper{Rooms: rs, Forget: n.back.forget, Retention: n.cfg.Rooms.RetiredRetention,
			Log: n.log.With("component", "retired")}
	}
	n.cart.OnOrder(func(cart.Order) { n.outbox.Wake() })
	n.cart.OnOrderChange(func(string, cart.OrderChange) { n.outbox.Wake() })
	return nil
}

// start runs the node's background workers until stop.
func (n *node) start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	run := func(name string, f func(context.Context) error) {
		n.wg.Go(func() {
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				n.log.Error("worker stopped", "worker", name, "err", err)
			}
		})
	}
	started := time.Now().UnixMilli()
	info := func() room.NodeInfo {
		return room.NodeInfo{ID: n.cfg.Node.ID, HTTPURL: n.advertise, Conns: n.hub.Conns(), Started: started}
	}
	run("hub", n.hub.Run)
	run("cart", n.cart.Run)
	run("webhooks", n.outbox.Run)
	if n.retired != nil {
		run("retired", func(ctx context.Context) error { n.retired.Run(ctx, n.cfg.Rooms.RetiredSweep); return nil })
	}
	run("lifecycle", n.life.Run)
	run("record", n.rec.Run)
	run("edges", n.edges.Run)
	run("registry", func(ctx context.Context) error {
		return room.Beat(ctx, n.back.registry, room.NodeTTL, info, n.log.With("component", "registry"))
	})
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
	if n.back.close != nil {
		n.back.close()
	}
}

// tcpPort is a listener's port; 0 when it is off.
func tcpPort(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// udpPort is a UDP listener's port; 0 when it is off.
func udpPort(a net.Addr) int {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.Port
	}
	return 0
}
