package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestBrowserAccess: the pages sign in to the room WebSocket with an auth
// frame (no token in any URL); a host with only the stream key is told the
// studio needs the host link, and the studio shows the stream key (not the
// host token) for the encoder; a guest keeps its id across reloads.
func TestBrowserAccess(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	srv := startServer(t, artifacts)
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Access room"}, http.StatusCreated, &created)
	host := mint(t, srv, "host-1", "Maya", "host")

	var res struct {
		OK        bool     `json:"ok"`
		Step      string   `json:"step"`
		Error     string   `json:"error"`
		Logs      []string `json:"logs"`
		WSURLs    []string `json:"wsURLs"`
		SentFirst []struct {
			Page     string `json:"page"`
			Type     string `json:"type"`
			HasToken bool   `json:"hasToken"`
			HasGuest bool   `json:"hasGuest"`
		} `json:"sentFirst"`
		KeyNote        string   `json:"keyNote"`
		KeyMessage     string   `json:"keyMessage"`
		KeyboxOpen     bool     `json:"keyboxOpen"`
		KeyedRole      string   `json:"keyedRole"`
		HostRole       string   `json:"hostRole"`
		EncoderKey     string   `json:"encoderKey"`
		HostNoteHidden bool     `json:"hostNoteHidden"`
		GuestIDs       []string `json:"guestIds"`
		GuestStored    bool     `json:"guestStored"`
	}
	runScript(t, node, chromium, &res, "access.mjs", "--base", srv.base, "--room", room, "--token", host, "--key", created.StreamKey)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	if !strings.Contains(res.KeyNote, "encoder") || !strings.Contains(res.KeyNote, "host link") ||
		!strings.Contains(res.KeyMessage, "host link") || !res.KeyboxOpen {
		t.Errorf("stream key only: note %q, message %q, keybox open %v; want the encoder and host link explained", res.KeyNote, res.KeyMessage, res.KeyboxOpen)
	}
	if res.KeyedRole != "guest" {
		t.Errorf("studio with the stream key: room socket role %q, want guest (the key signs in to nothing)", res.KeyedRole)
	}
	if res.HostRole != "host" || !res.HostNoteHidden {
		t.Errorf("studio with the host link: role %q, note hidden %v; want host and no note", res.HostRole, res.HostNoteHidden)
	}
	if res.EncoderKey != created.StreamKey {
		t.Errorf("encoder field: got %.8q…, want the stream key", res.EncoderKey)
	}
	if len(res.WSURLs) < 4 {
		t.Errorf("saw %d WebSockets, want at least 4 (studio twice, viewer twice)", len(res.WSURLs))
	}
	for _, u := range res.WSURLs {
		if strings.Contains(u, "token=") || !strings.Contains(u, "auth=frame") {
			t.Errorf("WebSocket URL %q: want ?auth=frame and no token", u)
		}
	}
	for _, f := range res.SentFirst {
		if f.Type != "auth" {
			t.Errorf("%s: first frame %q, want auth", f.Page, f.Type)
		}
	}
	if len(res.GuestIDs) != 2 || res.GuestIDs[0] == "" || res.GuestIDs[0] != res.GuestIDs[1] || !res.GuestStored {
		t.Errorf("guest ids across a reload: %v (stored %v), want one id kept", res.GuestIDs, res.GuestStored)
	}
}
