package e2e

import (
	"net/http"
	"testing"

	"liveroom/room/roomtest"
)

// TestBrowserClusterEdge: two real nodes share one redis-server. The host
// goes live from the studio on node A in headless Chromium (fake camera,
// WHIP); viewer pages on node B, one waiting from before the host is live
// and one arriving later, play the video node B pulls from node A, and see
// the host's chat.
func TestBrowserClusterEdge(t *testing.T) {
	chromium, node := browserTools(t)
	redis := roomtest.StartRedis(t)

	artifacts := artifactsDir(t)
	secret, key := randomString(t), randomString(t)
	nodes := map[string]*server{}
	for _, id := range []string{"a", "b"} {
		nodes[id] = startNode(t, artifacts, nodeOptions{name: "cluster-" + id, jwtSecret: secret, adminKey: key,
			args: []string{"--redis", redis.URL(), "--node-id", id}})
	}
	a, b := nodes["a"], nodes["b"]
	a.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Cluster room"}, http.StatusCreated, nil)
	var minted struct {
		Token string `json:"token"`
	}
	a.admin(t, "/api/v1/tokens", map[string]any{"sub": "host-1", "name": "Maya", "role": "host", "room": room, "ttl": "1h"}, 0, &minted)

	var res struct {
		OK         bool      `json:"ok"`
		Step       string    `json:"step"`
		Error      string    `json:"error"`
		Logs       []string  `json:"logs"`
		Early      *playback `json:"early"`
		Late       *playback `json:"late"`
		ChatOnEdge bool      `json:"chatOnEdge"`
	}
	runScript(t, node, chromium, &res, "cluster.mjs", "--origin", a.base, "--edge", b.base, "--room", room, "--token", minted.Token, "--out", artifacts)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	checkPlayback(t, "viewer on B waiting before go-live", res.Early)
	checkPlayback(t, "viewer on B arriving later", res.Late)
	if !res.ChatOnEdge {
		t.Error("the host's chat on A did not reach the viewer on B")
	}
	// B served them by pulling the room from A once.
	if got := b.metric(t, "liveroom_media_edge_pulls_started_total"); got != 1 {
		t.Errorf("B started %v pulls, want 1", got)
	}
	if got := a.metric(t, "liveroom_media_edge_sessions"); got != 1 {
		t.Errorf("A serves %v edge sessions, want 1", got)
	}
}
