package room_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room/roomtest"
)

// A client's ping is answered with a pong carrying its data (the server
// only skips pongs while the client's socket is backed up).
func TestClientPingGetsPong(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	ws, _, err := websocket.DefaultDialer.Dial(s.URL("demo", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	got := make(chan string, 1)
	ws.SetPongHandler(func(data string) error { got <- data; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case d := <-got:
		if d != "hello" {
			t.Fatalf("pong data: got %q, want hello", d)
		}
	case <-time.After(roomtest.Wait):
		t.Fatal("no pong")
	}
}
