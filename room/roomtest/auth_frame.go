package roomtest

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// DialFrame connects to /ws/{room}?auth=frame and, unless frame is nil,
// sends it as the first frame (the auth frame). It waits for nothing.
func (s *Server) DialFrame(t testing.TB, roomID string, frame []byte) *Client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(s.HTTP.URL, "http") + "/ws/" + roomID + "?auth=frame"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", roomID, err)
	}
	c := &Client{WS: ws, events: make(chan room.Event, 4096), done: make(chan struct{})}
	go c.read()
	if frame != nil {
		c.SendRaw(t, frame)
	}
	return c
}
