package room_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestFloodDisconnects(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: echo, Hub: cfgWith(func(c *room.HubConfig) {
		c.FrameRate, c.FrameBurst, c.FloodFactor = 10, 10, 10
	})})
	flooder := s.Dial(t, "demo", s.Token(t, "f", room.RoleViewer, "demo"))
	other := s.Dial(t, "demo", s.Token(t, "o", room.RoleViewer, "demo"))
	defer other.Close()
	frame := []byte(`{"type":"test.say","text":"x","ref":"f"}`)
	for range 3000 {
		if flooder.WS.WriteMessage(websocket.TextMessage, frame) != nil {
			break
		}
	}
	if ev := flooder.ExpectError(t, room.CodeRateLimited); ev.Ref != "f" {
		t.Errorf("rate_limited ref: got %q, want f", ev.Ref)
	}
	if got := flooder.ExpectClose(t); got != room.CloseFlood {
		t.Fatalf("close: got %d, want %d", got, room.CloseFlood)
	}
	// The burst got through, the rest did not; the room still works.
	other.Send(t, map[string]any{"type": "test.say", "text": "fine"})
	said := 0
	for {
		ev := other.Expect(t, "test.said")
		if roomtest.Field[string](t, ev, "text") == "fine" {
			break
		}
		said++
	}
	if said > 10+5 { // burst plus what refilled while flooding
		t.Fatalf("flooder frames handled: got %d, want ≤ 15", said)
	}
}

func TestSetLive(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	c := s.Dial(t, "demo", "")
	defer c.Close()
	ctx := context.Background()
	for _, live := range []bool{true, false} {
		if err := s.Hub.SetLive(ctx, "demo", live); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "stream.live", false: "stream.offline"}[live]
		if ev := c.Expect(t, want); ev.Seq == 0 {
			t.Fatalf("%s without seq", want)
		}
		late := s.Dial(t, "demo", "")
		if got := roomtest.Field[map[string]any](t, late.Welcome, "room")["live"]; got != live {
			t.Fatalf("welcome live: got %v, want %v", got, live)
		}
		late.Close()
		rm, _ := s.Rooms.Get(ctx, "demo")
		if (rm.Status == room.StatusLive) != live {
			t.Fatalf("store status: got %s with live=%v", rm.Status, live)
		}
	}
}

func TestViewersAndLikes(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) {
		c.ViewersInterval, c.LikesInterval = 100*time.Millisecond, 50*time.Millisecond
	})})
	a := s.Dial(t, "demo", "")
	defer a.Close()
	b := s.Dial(t, "demo", "")
	if got := roomtest.Field[map[string]any](t, b.Welcome, "room")["viewers"]; got != float64(2) {
		t.Fatalf("welcome viewers: got %v, want 2", got)
	}
	a.Next(t, func(e room.Event) bool { return e.Type == "viewers" && roomtest.Field[int](t, e, "count") == 2 })
	b.Close()
	a.Next(t, func(e room.Event) bool { return e.Type == "viewers" && roomtest.Field[int](t, e, "count") == 1 })

	ctx := context.Background()
	for range 100 {
		if err := s.Hub.AddLikes(ctx, "demo", 2); err != nil {
			t.Fatal(err)
		}
	}
	// Aggregated: far fewer events than calls, and the last says 200.
	events := 0
	for {
		ev := a.Expect(t, "likes")
		events++
		if roomtest.Field[int](t, ev, "total") == 200 {
			break
		}
	}
	if events > 10 {
		t.Fatalf("likes events: got %d for 100 calls, want aggregation", events)
	}
}

func TestJoinCheckAndKick(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: func(h *room.Hub, _ *roomtest.Server) error {
		h.OnJoin(func(ctx context.Context, roomID string, who room.Identity) error {
			switch who.ID {
			case "banned":
				return room.Errorf(room.CodeBanned, "no")
			case "broken":
				return errors.New("store down")
			}
			return nil
		})
		return nil
	}})
	for _, tc := range []struct {
		user      string
		wantCode  string
		wantClose int
	}{
		{"banned", room.CodeBanned, room.CloseBanned},
		{"broken", room.CodeUnavailable, room.CloseInternal},
	} {
		c, _, err := s.DialRaw("demo", s.Token(t, tc.user, room.RoleViewer, "demo"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpectError(t, tc.wantCode)
		if got := c.ExpectClose(t); got != tc.wantClose {
			t.Errorf("%s: close %d, want %d", tc.user, got, tc.wantClose)
		}
	}
	u := s.Dial(t, "demo", s.Token(t, "u", room.RoleViewer, "demo"))
	keep := s.Dial(t, "demo", s.Token(t, "k", room.RoleViewer, "demo"))
	defer keep.Close()
	if err := s.Hub.Kick(context.Background(), "demo", "u", room.CodeBanned, "bye"); err != nil {
		t.Fatal(err)
	}
	u.ExpectError(t, room.CodeBanned)
	if got := u.ExpectClose(t); got != room.CloseBanned {
		t.Fatalf("kick close: got %d", got)
	}
	if got := keep.Quiet(t, "still"); len(got) > 2 { // viewers counts at most
		t.Fatalf("bystander got %v", got)
	}
	if err := s.Hub.CloseRoom(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	keep.ExpectError(t, room.CodeRoomClosed)
	if got := keep.ExpectClose(t); got != room.CloseRoomClosed {
		t.Fatalf("close room: got %d", got)
	}
}

func TestSnapshotContributors(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: func(h *room.Hub, _ *roomtest.Server) error {
		h.AddSnapshot(func(ctx context.Context, snap *room.Snapshot) error {
			snap.SetRoom("pinned", map[string]any{"sku": "A1"})
			snap.Set("seq", 999) // reserved: ignored
			if snap.You.Role.AtLeast(room.RoleHost) {
				snap.Set("studio", true)
			}
			return nil
		})
		h.AddSnapshot(func(ctx context.Context, snap *room.Snapshot) error { return errors.New("partial") })
		return nil
	}})
	v := s.Dial(t, "demo", "")
	defer v.Close()
	h := s.Dial(t, "demo", s.Token(t, "h", room.RoleHost, "demo"))
	defer h.Close()
	if got := roomtest.Field[map[string]any](t, v.Welcome, "room")["pinned"]; got.(map[string]any)["sku"] != "A1" {
		t.Fatalf("pinned: got %v", got)
	}
	if v.Welcome.Seq == 999 {
		t.Fatalf("a contributor overrode seq")
	}
	if ok, _ := v.Welcome.Field("studio", new(bool)); ok {
		t.Fatalf("a guest got the host's field")
	}
	if !roomtest.Field[bool](t, h.Welcome, "studio") {
		t.Fatalf("host lacks studio")
	}
}

// Two hubs on one bus act as two nodes: one seq, events and private sends
// cross nodes, viewer counts add up.
func TestTwoNodes(t *testing.T) {
	bus := room.NewMemoryBus(100)
	nodeCfg := func(id string) *room.HubConfig {
		return cfgWith(func(c *room.HubConfig) { c.NodeID = id; c.ViewersInterval = 100 * time.Millisecond })
	}
	a := roomtest.New(t, roomtest.Options{Bus: bus, Hub: nodeCfg("a"), Setup: echo})
	b := roomtest.New(t, roomtest.Options{Bus: bus, Hub: nodeCfg("b"), Setup: echo})
	tok := a.Token(t, "buyer", room.RoleViewer, "demo") // same secret on both
	onA := a.Dial(t, "demo", tok)
	defer onA.Close()
	onB := b.Dial(t, "demo", tok)
	defer onB.Close()
	onB.Send(t, map[string]any{"type": "test.say", "text": "from b"})
	ea, eb := onA.Expect(t, "test.said"), onB.Expect(t, "test.said")
	if ea.Seq != eb.Seq || ea.Seq == 0 {
		t.Fatalf("seq: node a %d, node b %d", ea.Seq, eb.Seq)
	}
	if err := b.Hub.SendUser(context.Background(), "demo", "buyer", room.MustEvent("cart", map[string]any{"items": []any{}})); err != nil {
		t.Fatal(err)
	}
	onA.Expect(t, "cart")
	onB.Expect(t, "cart")
	onA.Next(t, func(e room.Event) bool { return e.Type == "viewers" && roomtest.Field[int](t, e, "count") == 2 })
}

func TestShutdownClosesWith1001(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{NoRun: true})
	c := s.Dial(t, "demo", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Hub.Run(ctx) }()
	cancel()
	c.ExpectError(t, room.CodeGoingAway)
	if got := c.ExpectClose(t); got != room.CloseGoingAway {
		t.Fatalf("close: got %d, want 1001", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, resp, err := s.DialRaw("demo", "", nil, nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial after shutdown: got %v %v, want 503", resp, err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := room.DefaultHubConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		key string
		mod func(*room.HubConfig)
	}{
		{"hub.max_conns_per_ip", func(c *room.HubConfig) { c.MaxConnsPerIP = -1 }},
		{"hub.send_queue", func(c *room.HubConfig) { c.SendQueue = 1 }},
		{"hub.read_limit", func(c *room.HubConfig) { c.ReadLimit = 10 }},
		{"hub.max_frame", func(c *room.HubConfig) { c.MaxFrame = 100 }},
		{"hub.history_size", func(c *room.HubConfig) { c.HistorySize = 0 }},
		{"hub.frame_rate", func(c *room.HubConfig) { c.FrameRate = 0 }},
		{"hub.pong_timeout", func(c *room.HubConfig) { c.PongTimeout = time.Second }},
		{"hub.allowed_origins", func(c *room.HubConfig) { c.AllowedOrigins = []string{"example.com"} }},
		{"hub.shards", func(c *room.HubConfig) { c.Shards = 0 }},
	}
	for _, tc := range tests {
		c := room.DefaultHubConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: got %v, want an error naming it", tc.key, err)
		}
	}
	c := room.DefaultHubConfig()
	c.MaxConnsPerIP = 0 // no limit is valid
	if err := c.Validate(); err != nil {
		t.Errorf("max_conns_per_ip 0: %v", err)
	}
}

// Conns counts this node's WebSocket connections (the load a node reports
// to the registry), in every room, and drops as they close.
func TestHubConns(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	if got := s.Hub.Conns(); got != 0 {
		t.Fatalf("conns before any client: got %d, want 0", got)
	}
	a := s.Dial(t, "demo", "")
	b := s.Dial(t, "demo", "")
	defer b.Close()
	if got := s.Hub.Conns(); got != 2 {
		t.Fatalf("conns with two clients: got %d, want 2", got)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Hub.Conns() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("conns after one client left: got %d, want 1", s.Hub.Conns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
