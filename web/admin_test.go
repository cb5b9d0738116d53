package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"liveroom/chat"
	"liveroom/room"
)

func TestAdminRooms(t *testing.T) {
	n := newTestNode(t)
	rm := n.createRoom("spring", false)
	if rm.StreamKey == "" || rm.Status != room.StatusScheduled {
		t.Fatalf("created room: got %+v, want a stream key and status scheduled", rm)
	}
	n.createRoom("secret", true)

	// Public listing hides private rooms and stream keys.
	status, _, body := n.do("GET", "/api/v1/rooms", "", "", nil)
	if status != 200 || strings.Contains(string(body), rm.StreamKey) || strings.Contains(string(body), `"secret"`) {
		t.Fatalf("public list: got %d %s, want 200 without keys or private rooms", status, body)
	}
	status, _, body = n.do("GET", "/api/v1/rooms", testAdminKey, "", nil)
	var list struct{ Rooms []room.Room }
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list.Rooms) != 2 || list.Rooms[0].StreamKey == "" {
		t.Fatalf("admin list: got %d %s, want both rooms with keys", status, body)
	}

	status, _, body = n.do("PATCH", "/api/v1/rooms/spring", testAdminKey, "application/json", []byte(`{"title":"Spring, live","rotate_stream_key":true}`))
	var patched room.Room
	_ = json.Unmarshal(body, &patched)
	if status != 200 || patched.Title != "Spring, live" || patched.StreamKey == rm.StreamKey {
		t.Fatalf("patch: got %d %s, want new title and a new key", status, body)
	}
	status, _, _ = n.do("DELETE", "/api/v1/rooms/spring", testAdminKey, "", nil)
	if status != http.StatusNoContent {
		t.Fatalf("delete: got %d, want 204", status)
	}
	status, _, body = n.do("GET", "/api/v1/rooms/spring", testAdminKey, "", nil)
	if status != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("get deleted: got %d %s, want 404 not_found", status, body)
	}
}

func TestAdminErrors(t *testing.T) {
	n := newTestNode(t)
	n.createRoom("r1", false)
	viewer := n.token("v1", room.RoleViewer, "*")
	admin := n.token("a1", room.RoleAdmin, "*")
	tests := []struct {
		name, method, path, bearer, ctype, body string
		status                                  int
		code                                    string
	}{
		{"no credentials", "POST", "/api/v1/rooms", "", "application/json", `{"title":"x"}`, 401, "unauthorized"},
		{"wrong key", "POST", "/api/v1/rooms", "nope-nope-nope-nope", "application/json", `{"title":"x"}`, 401, "unauthorized"},
		{"viewer token", "POST", "/api/v1/rooms", viewer, "application/json", `{"title":"x"}`, 403, "forbidden"},
		{"admin token ok", "POST", "/api/v1/rooms", admin, "application/json", `{"id":"r2","title":"x"}`, 201, ""},
		{"duplicate", "POST", "/api/v1/rooms", admin, "application/json", `{"id":"r1","title":"x"}`, 409, "conflict"},
		{"bad id", "POST", "/api/v1/rooms", admin, "application/json", `{"id":"R 1","title":"x"}`, 400, "bad_request"},
		{"no title", "POST", "/api/v1/rooms", admin, "application/json", `{"id":"r3"}`, 400, "bad_request"},
		{"unknown field", "POST", "/api/v1/rooms", admin, "application/json", `{"title":"x","colour":"red"}`, 400, "bad_request"},
		{"malformed json", "POST", "/api/v1/rooms", admin, "application/json", `{"title":`, 400, "bad_request"},
		{"wrong content type", "POST", "/api/v1/rooms", admin, "text/plain", `{"title":"x"}`, 415, "bad_request"},
		{"too large", "POST", "/api/v1/rooms", admin, "application/json", `{"title":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large"},
		{"patch live refused", "PATCH", "/api/v1/rooms/r1", admin, "application/json", `{"status":"live"}`, 400, "bad_request"},
		{"patch bad source", "PATCH", "/api/v1/rooms/r1", admin, "application/json", `{"source":"http://x"}`, 400, "bad_request"},
		{"patch missing", "PATCH", "/api/v1/rooms/nope", admin, "application/json", `{"title":"x"}`, 404, "not_found"},
		{"delete missing", "DELETE", "/api/v1/rooms/nope", admin, "", "", 404, "not_found"},
		{"token bad role", "POST", "/api/v1/tokens", admin, "application/json", `{"sub":"u","role":"owner","room":"r1"}`, 400, "bad_request"},
		{"token bad ttl", "POST", "/api/v1/tokens", admin, "application/json", `{"sub":"u","role":"viewer","room":"r1","ttl":"forever"}`, 400, "bad_request"},
		{"token no sub", "POST", "/api/v1/tokens", admin, "application/json", `{"role":"viewer","room":"r1"}`, 400, "bad_request"},
		{"token by viewer", "POST", "/api/v1/tokens", viewer, "application/json", `{"sub":"u","role":"admin","room":"*"}`, 403, "forbidden"},
		{"unknown route", "GET", "/api/v1/nothing", "", "", "", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := n.do(tc.method, tc.path, tc.bearer, tc.ctype, []byte(tc.body))
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, body, tc.status)
			}
			if tc.code != "" {
				if got := errorCode(t, body); got != tc.code {
					t.Fatalf("got code %q, want %q", got, tc.code)
				}
			}
		})
	}
}

func TestMintedTokenVerifies(t *testing.T) {
	n := newTestNode(t)
	status, _, body := n.do("POST", "/api/v1/tokens", testAdminKey, "application/json", []byte(`{"sub":"u7","name":"Uma","role":"moderator","room":"r1","ttl":"2h"}`))
	var out struct{ Token string }
	if err := json.Unmarshal(body, &out); status != 201 || err != nil {
		t.Fatalf("mint: got %d %s", status, body)
	}
	id, err := n.auth.Verify(out.Token, "r1")
	if err != nil || id.ID != "u7" || id.Name != "Uma" || id.Role != room.RoleModerator {
		t.Fatalf("verify minted: got %+v %v", id, err)
	}
	if _, err := n.auth.Verify(out.Token, "r2"); err == nil {
		t.Fatal("token for r1 accepted for r2")
	}
}

func TestHealth(t *testing.T) {
	n := newTestNode(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _, body := n.do("GET", path, "", "", nil); status != 200 {
			t.Fatalf("%s: got %d %s", path, status, body)
		}
	}
	status, _, body := n.do("GET", "/metrics", "", "", nil)
	if status != 200 || !strings.Contains(string(body), "liveroom_") {
		t.Fatalf("/metrics: got %d, want 200 with liveroom_ metrics", status)
	}
}

// fakeModLog stands in for the chat service at the web seam.
type fakeModLog struct{}

func (fakeModLog) ModerationLog(_ context.Context, roomID string, limit int) ([]chat.AuditEntry, error) {
	return []chat.AuditEntry{{Action: "timeout", Room: roomID}}, nil
}

func TestRoomScopedRoutes(t *testing.T) {
	n := newTestNode(t)
	n.srv.Config.Handler.(*Server).deps.ModLog = fakeModLog{}
	rm := n.createRoom("r1", false)
	host := n.token("h1", room.RoleHost, "r1")
	otherHost := n.token("h2", room.RoleHost, "r2")
	mod := n.token("m1", room.RoleModerator, "r1")
	viewer := n.token("v1", room.RoleViewer, "r1")
	tests := []struct {
		name, method, path, bearer, body string
		status                           int
	}{
		{"host ends the show", "PATCH", "/api/v1/rooms/r1", host, `{"status":"ended"}`, 200},
		{"stream key may not patch", "PATCH", "/api/v1/rooms/r1", rm.StreamKey, `{"title":"Renamed"}`, 401},
		{"host may not make it private", "PATCH", "/api/v1/rooms/r1", host, `{"private":true}`, 403},
		{"host may not rotate the key", "PATCH", "/api/v1/rooms/r1", host, `{"rotate_stream_key":true}`, 403},
		{"moderator may not patch", "PATCH", "/api/v1/rooms/r1", mod, `{"status":"ended"}`, 403},
		{"other room's host", "PATCH", "/api/v1/rooms/r1", otherHost, `{"status":"ended"}`, 401},
		{"no credentials", "PATCH", "/api/v1/rooms/r1", "", `{"status":"ended"}`, 401},
		{"moderator reads the log", "GET", "/api/v1/rooms/r1/moderation/log", mod, "", 200},
		{"viewer may not read the log", "GET", "/api/v1/rooms/r1/moderation/log", viewer, "", 403},
		{"guest may not read the log", "GET", "/api/v1/rooms/r1/moderation/log", "", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := n.do(tc.method, tc.path, tc.bearer, "application/json", []byte(tc.body))
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, body, tc.status)
			}
		})
	}
	// A host sees where to publish and the key; a viewer sees neither.
	_, _, body := n.do("GET", "/api/v1/rooms/r1", host, "", nil)
	var v struct {
		StreamKey string `json:"stream_key"`
		Ingest    struct{ WHIP string }
	}
	if err := json.Unmarshal(body, &v); err != nil || v.StreamKey == "" || !strings.HasSuffix(v.Ingest.WHIP, "/whip/r1") {
		t.Fatalf("host view: got %s", body)
	}
	_, _, body = n.do("GET", "/api/v1/rooms/r1", viewer, "", nil)
	if strings.Contains(string(body), "stream_key") || strings.Contains(string(body), "ingest") {
		t.Fatalf("viewer view leaks host fields: %s", body)
	}
}

// An admin token scoped to one room is that room's admin, not the server's.
func TestRoomScopedAdminIsNotGlobal(t *testing.T) {
	n := newTestNode(t)
	n.createRoom("r1", false)
	n.createRoom("r2", false)
	scoped := n.token("a1", room.RoleAdmin, "r1")
	if status, _, body := n.do("DELETE", "/api/v1/rooms/r2", scoped, "", nil); status != http.StatusForbidden {
		t.Fatalf("scoped admin deleting another room: got %d %s, want 403", status, body)
	}
	if status, _, body := n.do("POST", "/api/v1/tokens", scoped, "application/json", []byte(`{"sub":"x","role":"admin","room":"*"}`)); status != http.StatusForbidden {
		t.Fatalf("scoped admin minting: got %d %s, want 403", status, body)
	}
	if status, _, body := n.do("PATCH", "/api/v1/rooms/r1", scoped, "application/json", []byte(`{"title":"Mine"}`)); status != http.StatusOK {
		t.Fatalf("scoped admin on its own room: got %d %s, want 200", status, body)
	}
	if status, _, body := n.do("POST", "/api/v1/tokens", testAdminKey, "application/json", []byte(`{"sub":"x","role":"admin","room":"r1"}`)); status != http.StatusBadRequest {
		t.Fatalf("minting a room-scoped admin token: got %d %s, want 400", status, body)
	}
}

// A room's pulled source URL carries camera credentials: never public.
func TestSourceIsNotPublic(t *testing.T) {
	n := newTestNode(t)
	body := []byte(`{"id":"cam","title":"Cam","source":"rtsp://admin:camPass@127.0.0.1:1/live"}`)
	if status, _, b := n.do("POST", "/api/v1/rooms", testAdminKey, "application/json", body); status != 201 {
		t.Fatalf("create: %d %s", status, b)
	}
	for _, path := range []string{"/api/v1/rooms", "/api/v1/rooms/cam"} {
		if _, _, b := n.do("GET", path, "", "", nil); strings.Contains(string(b), "camPass") {
			t.Fatalf("GET %s without credentials leaks the source: %s", path, b)
		}
	}
	if _, _, b := n.do("GET", "/api/v1/rooms/cam", testAdminKey, "", nil); !strings.Contains(string(b), "camPass") {
		t.Fatalf("admin should see the source: %s", b)
	}
}
