package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
)

// crashNode is one node's config file and data directory: they outlive its
// processes, so a test kills one with SIGKILL and starts the next on the
// same state.
type crashNode struct {
	t    *testing.T
	cfg  string // liveroom.yaml
	data string
}

// newCrashNode writes a liveroom.yaml with the crash tests' secrets and,
// after them, extraYAML (top-level sections of the test's own).
func newCrashNode(t *testing.T, extraYAML string) *crashNode {
	t.Helper()
	dir := t.TempDir()
	n := &crashNode{t: t, cfg: filepath.Join(dir, "liveroom.yaml"), data: filepath.Join(dir, "data")}
	text := fmt.Sprintf("auth:\n  jwt_secret: %s\n  admin_key: %s\n", crashSecret, crashAdminKey) + extraYAML
	if err := os.WriteFile(n.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// start runs the real binary on the node's config and data directory.
func (n *crashNode) start(extra ...string) *proctest.Server {
	n.t.Helper()
	return startServer(n.t, n.data, append([]string{"--config", n.cfg}, extra...)...)
}

// seedRoom creates room roomID and puts product sku in it through the
// admin API.
func seedRoom(t *testing.T, base, roomID, title, sku string, product map[string]any) {
	t.Helper()
	if status, b := adminDo(t, "POST", base+"/api/v1/rooms", map[string]any{"id": roomID, "title": title}); status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	if status, b := adminDo(t, "PUT", base+"/api/v1/rooms/"+roomID+"/products/"+sku, product); status != 200 {
		t.Fatalf("put product: %d %s", status, b)
	}
}

// joinWS dials roomID with token and waits for the welcome; who names the
// client in the failure.
func joinWS(t *testing.T, base, roomID, token, who string) *wsClient {
	t.Helper()
	c := dialWS(t, base, roomID, token)
	if c.await("welcome", 5*time.Second) == nil {
		t.Fatalf("%s: no welcome", who)
	}
	return c
}

// startSale sends sale.start with fields (ref "s") and returns the id of
// the sale started.
func startSale(t *testing.T, host *wsClient, fields map[string]any) string {
	t.Helper()
	m := map[string]any{"type": "sale.start", "ref": "s"}
	maps.Copy(m, fields)
	_ = host.send(m)
	started := host.await("sale.started", 5*time.Second)
	if started == nil {
		t.Fatal("no sale.started")
	}
	return started["sale"].(map[string]any)["id"].(string)
}
