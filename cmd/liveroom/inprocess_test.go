package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
	"liveroom/room"
	"liveroom/room/roomtest"
)

// In-process clusters: whole nodes (hub, chat, cart, SFU, lifecycle, edges,
// web) built by wireNode in one test process on one set of shared
// backends, the memory ones or one redis-server, each node serving HTTP on
// loopback. Edge pulls, origin moves and source takeovers are tested here
// without spawning processes; cluster_*_test.go keep a few process-level
// runs as the end-to-end proof (SIGKILL, Redis outages).

// inNode is one in-process node; p lets the process tests' helpers
// (publishTo, watchOn, metric, ...) talk to it.
type inNode struct {
	*node
	p    *proctest.Server
	srv  *httptest.Server
	once sync.Once
}

// leave stops the node cleanly (its leases are released), as a node being
// shut down or rolled does.
func (in *inNode) leave() {
	in.once.Do(func() {
		in.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.stop(ctx)
	})
}

// serveInProcess serves n's HTTP on loopback and starts its workers; the
// test's end stops it.
func serveInProcess(t *testing.T, n *node) *inNode {
	srv := httptest.NewServer(n.web)
	n.advertise = srv.URL
	n.start()
	in := &inNode{node: n, srv: srv, p: &proctest.Server{Base: srv.URL, RTSPAddr: n.rtspAddr.String()}}
	t.Cleanup(in.leave)
	return in
}

// backendsFor opens one node's backends; the nodes of a test share what
// they hold.
type backendsFor func(t *testing.T, cfg Config) *backends

// inProcessBackends are the two ways nodes share state: one memory set
// (what a single node runs) and one redis-server (returned too).
func inProcessBackends() map[string]func(t *testing.T) (backendsFor, *roomtest.RedisServer) {
	return map[string]func(t *testing.T) (backendsFor, *roomtest.RedisServer){
		"memory": func(t *testing.T) (backendsFor, *roomtest.RedisServer) { return sharedMemory(t), nil },
		"redis": func(t *testing.T) (backendsFor, *roomtest.RedisServer) {
			srv := roomtest.StartPersistentRedis(t) // rooms survive its restart
			return func(t *testing.T, cfg Config) *backends {
				cfg.Redis.URL = srv.URL()
				b, err := openBackends(cfg, quietLog())
				if err != nil {
					t.Fatal(err)
				}
				return b
			}, srv
		},
	}
}

// sharedMemory is one set of memory backends (bus, origins, registry, chat
// state, audit) and file-backed stores, shared by every node like Redis.
func sharedMemory(t *testing.T) backendsFor {
	dir := t.TempDir()
	rooms, err := room.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ccfg cart.Config
	ccfg.SetDefaults()
	store, err := cart.OpenLocal(filepath.Join(dir, "cart"), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	shared := backends{
		rooms: rooms, bus: room.NewMemoryBus(256), origins: room.NewMemoryOrigins(), registry: room.NewMemoryRegistry(),
		chat: chat.NewMemoryState(100, 100), audit: chat.NewMemoryAudit(), store: store,
		secret: []byte("in-process-cluster-secret"),
	}
	shared.forget = forgetters(shared.bus, shared.chat, shared.audit, store)
	return func(*testing.T, Config) *backends { b := shared; return &b } // closed by the test, not by a node
}

// startInProcess starts one node per id on backends from open.
func startInProcess(t *testing.T, open backendsFor, ids ...string) []*inNode {
	t.Helper()
	var nodes []*inNode
	for _, id := range ids {
		cfg := testConfig(t)
		cfg.Node.ID = id
		cfg.Hub.MaxConnsPerIP = 0
		n, err := wireNode(cfg, prometheus.NewRegistry(), quietLog(), open(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, serveInProcess(t, n))
	}
	return nodes
}

// inProcessTest runs body on both kinds of shared backends, with nodes
// named ids and a room roomID created on the first; redis is nil on the
// memory ones.
func inProcessTest(t *testing.T, roomID string, within time.Duration, body func(t *testing.T, ctx context.Context, nodes []*inNode, redis *roomtest.RedisServer), ids ...string) {
	for name, open := range inProcessBackends() {
		t.Run(name, func(t *testing.T) {
			backends, redis := open(t)
			nodes := startInProcess(t, backends, ids...)
			ctx, cancel := context.WithTimeout(context.Background(), within)
			defer cancel()
			if status, b := adminDo(t, "POST", nodes[0].p.Base+"/api/v1/rooms", map[string]any{"id": roomID, "title": roomID}); status != 201 {
				t.Fatalf("create room: %d %s", status, b)
			}
			body(t, ctx, nodes, redis)
		})
	}
}

// The host publishes to a; viewers on b (one waiting from before) get the
// video from a keyframe on, through one pull however many they are; with
// Redis, video keeps flowing while it is down; the pull ends with the last
// viewer.
func TestInProcessEdgePull(t *testing.T) {
	inProcessTest(t, "edge", 60*time.Second, func(t *testing.T, ctx context.Context, nodes []*inNode, redis *roomtest.RedisServer) {
		a, b := nodes[0].p, nodes[1].p
		early, earlySig := watchOn(t, ctx, b, "edge")
		publishTo(t, ctx, a, "edge", mintToken(t, a.Base, "host", "host", "edge"))
		viewers, sigs := []*mediatest.Viewer{early}, []*mediatest.HTTPSignaler{earlySig}
		for range 2 {
			v, sig := watchOn(t, ctx, b, "edge")
			viewers, sigs = append(viewers, v), append(sigs, sig)
		}
		for i, v := range viewers {
			st := waitVideo(t, ctx, v, "video through the edge", func(st mediatest.ViewerStats) bool {
				return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60 && st.Audio.Packets > 20
			})
			if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
				t.Errorf("viewer %d on b: first video packet keyframe %v, SPS/PPS %v; want both", i, st.FirstVideoKeyframe, st.FirstKeyframeParams)
			}
		}
		if got := metric(t, b, "liveroom_media_edge_pulls_started_total"); got != 1 {
			t.Errorf("b started %v pulls for 3 viewers, want 1", got)
		}
		if got := metric(t, a, "liveroom_media_edge_sessions"); got != 1 {
			t.Errorf("a serves %v edge sessions, want 1", got)
		}
		if got := metric(t, a, "liveroom_media_viewers"); got != 0 {
			t.Errorf("a counts %v viewers, want 0 (the edge is not a viewer)", got)
		}
		wantLive(t, b, "edge")
		if redis != nil {
			redis.Stop()
			for i, v := range viewers {
				before := v.Stats()
				waitVideo(t, ctx, v, fmt.Sprintf("video on b while redis is down (viewer %d)", i), func(st mediatest.ViewerStats) bool {
					return st.Video.Packets > before.Video.Packets+60
				})
			}
			if err := redis.Start(); err != nil {
				t.Fatal(err)
			}
		}
		for _, sig := range sigs {
			// Right after Redis restarts, a request may still meet a
			// connection it closed and answer 503; the viewer retries.
			err := sig.Delete(ctx)
			for se := (*mediatest.StatusError)(nil); errors.As(err, &se) && se.Code == 503 && ctx.Err() == nil; {
				time.Sleep(100 * time.Millisecond)
				err = sig.Delete(ctx)
			}
			if err != nil {
				t.Fatalf("WHEP DELETE: %v", err)
			}
		}
		waitMetric(t, ctx, b, "liveroom_media_edge_pulls", 0)
		waitMetric(t, ctx, a, "liveroom_media_edge_sessions", 0)
	}, "a", "b")
}

// The host moves from a to c while its connection to a still looks alive:
// c becomes the origin, a drops its stale host and, like b, pulls from c;
// nobody's WebRTC session ends.
func TestInProcessHostMoves(t *testing.T) {
	inProcessTest(t, "hop", 60*time.Second, func(t *testing.T, ctx context.Context, nodes []*inNode, _ *roomtest.RedisServer) {
		a, b, c := nodes[0].p, nodes[1].p, nodes[2].p
		host := mintToken(t, a.Base, "host", "host", "hop")
		publishTo(t, ctx, a, "hop", host)
		va, _ := watchOn(t, ctx, a, "hop")
		vb, _ := watchOn(t, ctx, b, "hop")
		for _, v := range []*mediatest.Viewer{va, vb} {
			waitVideo(t, ctx, v, "video from a", func(st mediatest.ViewerStats) bool {
				return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
			})
		}
		movedAt := time.Now()
		publishTo(t, ctx, c, "hop", host)
		waitResumed(t, ctx, map[string]*mediatest.Viewer{"a": va, "b": vb}, movedAt)
		waitMetric(t, ctx, a, "liveroom_media_publishers", 0)
		waitMetric(t, ctx, a, "liveroom_media_edge_pulls", 1)
		waitMetric(t, ctx, c, "liveroom_media_edge_sessions", 2)
		wantLive(t, b, "hop")
	}, "a", "b", "c")
}

// The origin a leaves cleanly (its leases are released) and the host
// republishes to c (see hostRepublishes).
func TestInProcessOriginLeaves(t *testing.T) {
	inProcessTest(t, "move", 60*time.Second, func(t *testing.T, ctx context.Context, nodes []*inNode, _ *roomtest.RedisServer) {
		hostRepublishes(t, ctx, nodes[0].p, nodes[1].p, nodes[2].p, "move", nodes[0].leave)
	}, "a", "b", "c")
}

// A room whose source is an RTSP URL is pulled by exactly one node, the
// one that created it; when that node leaves, another takes the pull over
// and the viewer on c gets video again.
func TestInProcessSourceTakeover(t *testing.T) {
	inProcessTest(t, "cam", 60*time.Second, func(t *testing.T, ctx context.Context, nodes []*inNode, _ *roomtest.RedisServer) {
		a, b, c := nodes[0].p, nodes[1].p, nodes[2].p
		v := mirrorPulledOnce(t, ctx, a, b, c)
		nodes[1].leave()
		waitTakeover(t, ctx, v, time.Now(), a, c)
	}, "a", "b", "c")
}
