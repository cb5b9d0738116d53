package room_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// resume is limited per connection: past hub.resume_rate a second the
// client gets rate_limited (with its ref) and no welcome; a second later it
// may resume again.
func TestResumeRate(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) { c.ResumeRate = 1 })})
	c := s.Dial(t, "demo", "")
	defer c.Close()
	seq := c.Welcome.Seq
	for _, ref := range []string{"r0", "r1", "r2"} {
		c.Send(t, map[string]any{"type": "resume", "after_seq": seq, "ref": ref})
	}
	if w := c.Expect(t, "welcome"); w.Ref != "r0" {
		t.Fatalf("first resume: welcome ref %q, want r0", w.Ref)
	}
	for _, ref := range []string{"r1", "r2"} {
		if ev := c.ExpectError(t, room.CodeRateLimited); ev.Ref != ref {
			t.Fatalf("rate_limited ref: got %q, want %q", ev.Ref, ref)
		}
	}
	if before := c.Quiet(t, "probe"); len(before) != 0 {
		t.Fatalf("a refused resume sent %d events (first %s)", len(before), before[0].Type)
	}
	time.Sleep(1100 * time.Millisecond) // one token back
	c.Send(t, map[string]any{"type": "resume", "after_seq": seq, "ref": "r3"})
	if w := c.Expect(t, "welcome"); w.Ref != "r3" {
		t.Fatalf("resume a second later: welcome ref %q, want r3", w.Ref)
	}
}

// A resume whose missed events would fill half the byte cap is answered
// with a fresh snapshot: expired, then resumed: false and no missed.
func TestResumeOverBudget(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) { c.SendQueueBytes = 64 << 10 })})
	c := s.Dial(t, "demo", "")
	defer c.Close()
	seq := c.Welcome.Seq
	pad := strings.Repeat("z", 4096)
	for i := range 10 { // 40 KiB: over half of 64 KiB
		if _, err := s.Hub.Publish(context.Background(), "demo", room.MustEvent("test.big", map[string]any{"i": i, "pad": pad})); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		c.Expect(t, "test.big")
	}
	c.Send(t, map[string]any{"type": "resume", "after_seq": seq, "ref": "big"})
	if ev := c.ExpectError(t, room.CodeExpired); ev.Ref != "big" {
		t.Fatalf("expired ref %q", ev.Ref)
	}
	w := c.Expect(t, "welcome")
	if roomtest.Field[bool](t, w, "resumed") {
		t.Fatal("resumed: true for 40 KiB of missed events, want a fresh snapshot")
	}
	if ok, _ := w.Field("missed", new(json.RawMessage)); ok {
		t.Fatal("a fresh snapshot carries missed events")
	}
}

// A client that sends resume after resume and reads nothing is a slow
// consumer: the welcomes it asked for count against its byte cap, it is
// closed with 4008, and a viewer in the same room keeps getting events.
func TestResumeFloodSlowConsumer(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) {
		c.SendQueueBytes, c.ResumeRate = 256<<10, 100
		c.SendQueue = 65536 // the byte cap, not the event count, must stop it
		c.FrameRate, c.FrameBurst = 1000, 1000
		c.HistorySize = 40
	})})
	ctx := context.Background()
	pad := strings.Repeat("z", 2048)
	for i := range 40 { // each welcome replays ~80 KiB
		if _, err := s.Hub.Publish(ctx, "demo", room.MustEvent("test.big", map[string]any{"i": i, "pad": pad})); err != nil {
			t.Fatal(err)
		}
	}
	d := &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}
	hostile, _, err := d.Dial(s.URL("demo", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Close()
	viewer := s.Dial(t, "demo", "")
	defer viewer.Close()

	frame := []byte(`{"type":"resume","after_seq":1,"ref":"x"}`)
	deadline := time.Now().Add(roomtest.Wait)
	sent := 0
	for gatherCounter(t, s, "liveroom_ws_drops_total", "reason", "queue_full") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d resumes nobody was cut off", sent)
		}
		_ = hostile.SetWriteDeadline(time.Now().Add(time.Second))
		if err := hostile.WriteMessage(websocket.TextMessage, frame); err != nil {
			break // the server closed it (and stopped reading)
		}
		sent++
		if sent%50 == 0 {
			time.Sleep(10 * time.Millisecond) // stay under the frame limit
		}
	}
	// The viewer is unaffected.
	if _, err := s.Hub.Publish(ctx, "demo", room.MustEvent("test.big", map[string]any{"i": 99})); err != nil {
		t.Fatal(err)
	}
	viewer.Next(t, func(e room.Event) bool { return e.Type == "test.big" && roomtest.Field[int](t, e, "i") == 99 })
	// The hostile client, reading now, finds welcomes, the slow_consumer
	// error and the close.
	_ = hostile.SetReadDeadline(time.Now().Add(roomtest.Wait))
	sawError := false
	for {
		_, msg, err := hostile.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, room.CloseSlowConsumer) {
				t.Fatalf("hostile client after %d resumes: got %v, want close %d", sent, err, room.CloseSlowConsumer)
			}
			break
		}
		sawError = sawError || strings.Contains(string(msg), `"slow_consumer"`)
	}
	if !sawError {
		t.Error("the hostile client never got the slow_consumer error")
	}
	waitFor(t, "disconnects{slow_consumer} = 1", func() bool {
		return gatherCounter(t, s, "liveroom_ws_disconnects_total", "reason", "slow_consumer") == 1
	})
}
