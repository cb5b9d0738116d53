package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/media"
	"liveroom/room"
)

const testAdminKey = "test-admin-key-0123456789"

// testNode is one liveroom HTTP node over loopback with a real SFU.
type testNode struct {
	t     testing.TB
	srv   *httptest.Server
	auth  *room.Auth
	rooms *room.FileStore
	sfu   *media.SFU
}

func newTestNode(t testing.TB, tune ...func(*Deps)) *testNode {
	t.Helper()
	auth, err := room.NewAuth(room.AuthConfig{JWTSecret: "test-secret-0123456789abcdef", AdminKey: testAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	rooms, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	mcfg := media.Config{Port: 0, ListenIP: "127.0.0.1"}
	mcfg.SetDefaults()
	mcfg.Port = 0
	sfu, err := media.New(mcfg, media.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: "127.0.0.1:0"}
	cfg.SetDefaults()
	deps := Deps{Auth: auth, Rooms: rooms, WHIP: sfu, WHEP: sfu, Edge: sfu, Gatherer: reg, Logger: log}
	for _, f := range tune {
		f(&deps)
	}
	h := New(cfg, deps)
	n := &testNode{t: t, srv: httptest.NewServer(h), auth: auth, rooms: rooms, sfu: sfu}
	t.Cleanup(func() {
		n.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sfu.Shutdown(ctx)
	})
	return n
}

// do sends a request with an optional bearer and body and returns the
// status, headers and body.
func (n *testNode) do(method, path, bearer, contentType string, body []byte) (int, http.Header, []byte) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := n.srv.Client().Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (n *testNode) createRoom(id string, private bool) room.Room {
	n.t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "title": "Room " + id, "private": private})
	status, _, body := n.do("POST", "/api/v1/rooms", testAdminKey, "application/json", b)
	if status != http.StatusCreated {
		n.t.Fatalf("create room: got %d %s, want 201", status, body)
	}
	var rm room.Room
	if err := json.Unmarshal(body, &rm); err != nil {
		n.t.Fatal(err)
	}
	return rm
}

func (n *testNode) token(sub string, role room.Role, roomID string) string {
	n.t.Helper()
	tok, err := n.auth.Mint(room.Identity{ID: sub, Name: sub, Role: role, Room: roomID}, time.Hour)
	if err != nil {
		n.t.Fatal(err)
	}
	return tok
}

// errorCode decodes a JSON error body, failing the test if it is not one.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body is not a JSON error: %q", body)
	}
	return e.Error.Code
}
