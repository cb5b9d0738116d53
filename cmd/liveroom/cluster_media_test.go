package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
	"liveroom/room/roomtest"
)

var clusterClip = sync.OnceValues(func() (*mediatest.Clip, error) { return mediatest.LoadClip("") })

// publishTo starts a WHIP publisher of the test clip on node p.
func publishTo(t *testing.T, ctx context.Context, p *proctest.Server, roomID, token string) *mediatest.Publisher {
	t.Helper()
	clip, err := clusterClip()
	if err != nil {
		t.Fatal(err)
	}
	api, err := mediatest.NewLoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	sig := mediatest.WHIP(p.Base+"/whip/"+roomID, token)
	pub, err := mediatest.NewPublisher(ctx, sig.Signal, mediatest.PublisherOptions{Clip: clip, API: api})
	if err != nil {
		t.Fatalf("publish to %s: %v", p.Base, err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
	return pub
}

// watchOn starts a WHEP viewer on node p.
func watchOn(t *testing.T, ctx context.Context, p *proctest.Server, roomID string) (*mediatest.Viewer, *mediatest.HTTPSignaler) {
	t.Helper()
	api, err := mediatest.NewLoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	sig := mediatest.WHEP(p.Base+"/whep/"+roomID, "")
	v, err := mediatest.NewViewer(ctx, sig.Signal, mediatest.ViewerOptions{API: api})
	if err != nil {
		t.Fatalf("watch on %s: %v", p.Base, err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatalf("viewer connect: %v", err)
	}
	return v, sig
}

func waitVideo(t *testing.T, ctx context.Context, v *mediatest.Viewer, what string, cond func(mediatest.ViewerStats) bool) mediatest.ViewerStats {
	t.Helper()
	st, err := v.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("%s: %v; got %+v", what, err, st)
	}
	return st
}

// waitResumed waits until every viewer got a keyframe after since and
// more video, in the same WebRTC session: one SSRC, no sequence jump.
func waitResumed(t *testing.T, ctx context.Context, viewers map[string]*mediatest.Viewer, since time.Time) {
	t.Helper()
	before := map[string]mediatest.ViewerStats{}
	for name, v := range viewers {
		before[name] = v.Stats()
	}
	for name, v := range viewers {
		before := before[name]
		st := waitVideo(t, ctx, v, "video again on "+name, func(st mediatest.ViewerStats) bool {
			return st.LastKeyframeAt.After(since) && st.Video.Packets > before.Video.Packets+60
		})
		if st.Video.SSRCChanges != 0 || st.Video.SeqJumps != 0 {
			t.Errorf("viewer on %s: %d SSRC changes, %d sequence jumps; want 0", name, st.Video.SSRCChanges, st.Video.SeqJumps)
		}
		t.Logf("viewer on %s: video again %v after the change", name, time.Since(since).Round(time.Millisecond))
	}
}

// wantLive checks the room's status through node p.
func wantLive(t *testing.T, p *proctest.Server, roomID string) {
	t.Helper()
	if status, body := adminDo(t, "GET", p.Base+"/api/v1/rooms/"+roomID, nil); status != 200 || !strings.Contains(string(body), `"status":"live"`) {
		t.Errorf("room %s on %s: %d %s, want status live", roomID, p.Base, status, body)
	}
}

// metric sums the samples of one series on a node's /metrics.
func metric(t *testing.T, p *proctest.Server, name string) float64 {
	t.Helper()
	return metricLabeled(t, p, name, "")
}

// metricLabeled sums the samples of one series whose labels contain label
// (as written in the exposition, e.g. `kind="pull"`; "" = all).
func metricLabeled(t *testing.T, p *proctest.Server, name, label string) float64 {
	t.Helper()
	resp, err := http.Get(p.Base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// mediaTest starts a 3-node cluster and creates a room on its first node;
// ctx bounds the test.
func mediaTest(t *testing.T, roomID string, within time.Duration) (*roomtest.RedisServer, []*proctest.Server, context.Context) {
	t.Helper()
	srv, nodes := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	if status, body := adminDo(t, "POST", nodes[0].Base+"/api/v1/rooms", map[string]any{"id": roomID, "title": roomID}); status != 201 {
		t.Fatalf("create room: %d %s", status, body)
	}
	return srv, nodes, ctx
}

func waitMetric(t *testing.T, ctx context.Context, p *proctest.Server, name string, want float64) {
	t.Helper()
	for {
		got := metric(t, p, name)
		if got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s on %s: %v, want %v", name, p.Base, got, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The edge pull (one pull for several viewers, video while Redis is down,
// the pull ending with the last viewer) and the host moving while its old
// connection looks alive are tested with whole nodes in one process, on
// memory and on Redis (inprocess_test.go); the tests below keep what only
// processes show: SIGKILL, and leases that expire.

// TestClusterOriginKilled: the host publishes to node a, viewers watch on b
// and c; a is killed with SIGKILL; the host republishes to c.
func TestClusterOriginKilled(t *testing.T) {
	_, nodes, ctx := mediaTest(t, "move", 90*time.Second)
	hostRepublishes(t, ctx, nodes[0], nodes[1], nodes[2], "move", nodes[0].Kill)
}

// hostRepublishes: the host publishes to a, viewers watch on b and c; gone
// takes a away and the host republishes to c. The viewer on b continues in
// the same WebRTC session (b now pulls from c), the one on c is served by
// the host directly, and the room stays live. Then the room is deleted
// through b: the WebRTC sessions on c end too.
func hostRepublishes(t *testing.T, ctx context.Context, a, b, c *proctest.Server, roomID string, gone func()) {
	t.Helper()
	host := mintToken(t, a.Base, "host", "host", roomID)
	pub := publishTo(t, ctx, a, roomID, host)
	vb, _ := watchOn(t, ctx, b, roomID)
	vc, _ := watchOn(t, ctx, c, roomID)
	for _, v := range []*mediatest.Viewer{vb, vc} {
		waitVideo(t, ctx, v, "video from a", func(st mediatest.ViewerStats) bool {
			return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
		})
	}
	gone()
	_ = pub.Close()
	goneAt := time.Now()
	publishTo(t, ctx, c, roomID, host)
	waitResumed(t, ctx, map[string]*mediatest.Viewer{"b": vb, "c": vc}, goneAt)
	waitMetric(t, ctx, b, "liveroom_media_edge_pulls", 1)
	wantLive(t, b, roomID)

	if status, body := adminDo(t, "DELETE", b.Base+"/api/v1/rooms/"+roomID, nil); status != 204 {
		t.Fatalf("delete room: %d %s", status, body)
	}
	for name, v := range map[string]*mediatest.Viewer{"b": vb, "c": vc} {
		select {
		case <-v.Ended():
		case <-ctx.Done():
			t.Fatalf("viewer on %s still connected after the room was deleted", name)
		}
	}
}

// TestClusterRTSPSourceOneNode: a room whose source is an RTSP URL is
// pulled by exactly one node of the cluster, which is then its origin (the
// others serve its viewers as edges); when that node is killed, another one
// takes the pull over once its lease expires.
func TestClusterRTSPSourceOneNode(t *testing.T) {
	_, nodes, ctx := mediaTest(t, "cam", 120*time.Second)
	a, b, c := nodes[0], nodes[1], nodes[2]
	v := mirrorPulledOnce(t, ctx, a, b, c)
	b.Kill()
	waitTakeover(t, ctx, v, time.Now(), a, c)
}

// mirrorPulledOnce publishes to room "cam" on a and creates room "mirror"
// on b whose source is a's RTSP read of "cam"; a viewer on c gets its
// video, and exactly one node, b, pulls the source.
func mirrorPulledOnce(t *testing.T, ctx context.Context, a, b, c *proctest.Server) *mediatest.Viewer {
	t.Helper()
	publishTo(t, ctx, a, "cam", mintToken(t, a.Base, "host", "host", "cam"))
	source := "rtsp://" + a.RTSPAddr + "/cam"
	if status, body := adminDo(t, "POST", b.Base+"/api/v1/rooms", map[string]any{"id": "mirror", "title": "Mirror", "source": source}); status != 201 {
		t.Fatalf("create mirror room: %d %s", status, body)
	}
	v, _ := watchOn(t, ctx, c, "mirror")
	waitVideo(t, ctx, v, "the mirrored camera on c", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
	})
	// Every node has looked at the room's source by now (sources are
	// checked every 3 s): one of them pulls it.
	time.Sleep(4 * time.Second)
	if got := sourcePulls(t, a, b, c); got != 1 {
		t.Fatalf("%v nodes pull the source, want 1", got)
	}
	if got := sourcePulls(t, b); got != 1 {
		t.Fatalf("b (which created the room) does not pull the source")
	}
	return v
}

// waitTakeover waits until one of the nodes left pulls the source and the
// viewer v gets video from after since again.
func waitTakeover(t *testing.T, ctx context.Context, v *mediatest.Viewer, since time.Time, left ...*proctest.Server) {
	t.Helper()
	for sourcePulls(t, left...) != 1 {
		if ctx.Err() != nil {
			t.Fatal("no node took the source over")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("source taken over %v after the node went", time.Since(since).Round(time.Millisecond))
	before := v.Stats()
	waitVideo(t, ctx, v, "the mirrored camera on c after the takeover", func(st mediatest.ViewerStats) bool {
		return st.LastKeyframeAt.After(since) && st.Video.Packets > before.Video.Packets+60
	})
}

// sourcePulls counts the RTSP source pulls of the nodes.
func sourcePulls(t *testing.T, ps ...*proctest.Server) float64 {
	sum := 0.0
	for _, p := range ps {
		sum += metricLabeled(t, p, "liveroom_rtsp_sessions", `kind="pull"`)
	}
	return sum
}
