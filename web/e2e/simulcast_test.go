package e2e

import (
	"net/http"
	"slices"
	"testing"
)

// TestBrowserStudioSimulcast: the studio page publishes three layers (q, h,
// f) over WHIP from Chromium's fake camera; a viewer page plays, and when
// more than one layer arrives, choosing "Low" gets it the lowest; the
// studio shows the viewer on a layer. How many layers Chrome sends depends
// on the machine (it drops layers under CPU load), so only "at least one"
// is asserted; the count is logged.
func TestBrowserStudioSimulcast(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	s := startNode(t, artifacts, nodeOptions{name: "simulcast", jwtSecret: randomString(t), adminKey: randomString(t)})
	s.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Simulcast"}, http.StatusCreated, nil)
	host := mint(t, s, "host-1", "Maya", "host")

	type layerState struct {
		Quality string   `json:"quality"`
		Layer   string   `json:"layer"`
		Paused  bool     `json:"paused"`
		Layers  []string `json:"layers"`
	}
	var res struct {
		OK             bool        `json:"ok"`
		Step           string      `json:"step"`
		Error          string      `json:"error"`
		Logs           []string    `json:"logs"`
		Camera         string      `json:"camera"`
		OfferedRids    []string    `json:"offeredRids"`
		Before         *layerState `json:"before"`
		After          *layerState `json:"after"`
		LowFrames      int         `json:"lowFrames"`
		LowFramesAfter int         `json:"lowFramesAfter"`
		StudioLayers   string      `json:"studioLayers"`
		Codec          string      `json:"codec"`
	}
	runScript(t, node, chromium, &res, "simulcast_studio.mjs", "--base", s.base, "--room", room, "--token", host)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	t.Logf("camera %s, offered rids %v, codec %s, layers arriving %v, after Low: %+v, studio: %q",
		res.Camera, res.OfferedRids, res.Codec, res.Before.Layers, res.After, res.StudioLayers)
	if !slices.Equal(res.OfferedRids, []string{"q", "h", "f"}) {
		t.Fatalf("the studio offered rids %v, want q, h, f", res.OfferedRids)
	}
	if len(res.Before.Layers) == 0 || res.Before.Paused {
		t.Fatalf("viewer layer state %+v: want at least one layer, not paused", res.Before)
	}
	if len(res.Before.Layers) >= 2 {
		if res.After.Layer != res.After.Layers[len(res.After.Layers)-1] {
			t.Fatalf("after Low the viewer is on %q, want the lowest of %v", res.After.Layer, res.After.Layers)
		}
		if res.LowFramesAfter <= res.LowFrames {
			t.Fatalf("video stopped on the low layer: frames %d -> %d", res.LowFrames, res.LowFramesAfter)
		}
	}
}
