package room

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// serverWirePair is a gorilla server connection over loopback and the raw
// client socket behind it, to read exactly the bytes a server sends.
func serverWirePair(t *testing.T) (*websocket.Conn, net.Conn) {
	t.Helper()
	ready := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			ready <- ws
		}
	}))
	t.Cleanup(srv.Close)
	cl, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	server := <-ready
	t.Cleanup(func() { server.Close() })
	return server, cl.UnderlyingConn()
}

// The writers put frames on the wire themselves; each must be exactly the
// frame gorilla's server would send for the same text message, at every
// length encoding (7-bit, 16-bit, 64-bit).
func TestEventFrameMatchesGorilla(t *testing.T) {
	server, raw := serverWirePair(t)
	for _, n := range []int{0, 1, 100, 125, 126, 127, 1000, 65535, 65536, 70000} {
		// an event whose JSON is n bytes long (or as short as it gets)
		body := func(pad int) json.RawMessage { return json.RawMessage(`{"d":"` + strings.Repeat("a", pad) + `"}`) }
		pad := max(0, n-len(Event{Type: "x", Body: body(0)}.AppendJSON(nil)))
		ev := Event{Type: "x", Body: body(pad)}
		f, payload := eventFrame(ev)
		want := ev.AppendJSON(nil)
		if payload != len(want) {
			t.Fatalf("n=%d: payload %d, JSON %d", n, payload, len(want))
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, want)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.WritePreparedMessage(pm); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(f))
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(raw, got); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, f) {
			t.Fatalf("payload of %d bytes: our frame starts % x, gorilla's % x", len(want), f[:min(12, len(f))], got[:min(12, len(got))])
		}
	}
	for _, op := range []struct {
		code    byte
		kind    int
		payload []byte
	}{{opPing, websocket.PingMessage, nil}, {opClose, websocket.CloseMessage, websocket.FormatCloseMessage(4001, "slow_consumer")}} {
		f := controlFrame(op.code, op.payload)
		if err := server.WriteControl(op.kind, op.payload, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(f))
		if _, err := io.ReadFull(raw, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f) {
			t.Fatalf("control frame %#x: ours % x, gorilla's % x", op.code, f, got)
		}
	}
}

// corkPair is a corkConn on the server side of a loopback TCP connection,
// and the raw client side.
func corkPair(t *testing.T) (*corkConn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return newCorkConn(sc), client
}

// Nothing may follow a close frame (RFC 6455 §5.5.1): once the server has
// answered a client's close, or queued its own, frames and gorilla's
// writes (a pong) are refused, and the wire ends with the close frame.
func TestNothingAfterCloseFrame(t *testing.T) {
	for _, how := range []string{"answer", "queue"} {
		t.Run(how, func(t *testing.T) {
			cc, client := corkPair(t)
			cc.setOnStall(func() {})
			first := prepare(Event{Type: "first"})
			later := prepare(Event{Type: "later"})
			if left, err := cc.sendFrames([]qitem{first}, false); err != nil || left {
				t.Fatalf("first frame: left %v, %v", left, err)
			}
			closing := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			want := append(append([]byte{}, first.f...), controlFrame(opClose, closing)...)
			switch how {
			case "answer":
				if err := cc.writeClose(closing); err != nil {
					t.Fatal(err)
				}
			case "queue":
				cc.queueClose(nil, closing)
				if err := cc.flush(time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cc.sendFrames([]qitem{later}, true); !errors.Is(err, websocket.ErrCloseSent) {
				t.Fatalf("a frame after the close: %v, want ErrCloseSent", err)
			}
			if err := cc.queueFrames([]qitem{later}, false); !errors.Is(err, websocket.ErrCloseSent) {
				t.Fatalf("a queued frame after the close: %v, want ErrCloseSent", err)
			}
			if _, err := cc.Write(controlFrame(0xA, nil)); !errors.Is(err, websocket.ErrCloseSent) {
				t.Fatalf("a pong after the close: %v, want ErrCloseSent", err)
			}
			if err := cc.writeClose(closing); !errors.Is(err, websocket.ErrCloseSent) {
				t.Fatalf("a second close: %v, want ErrCloseSent", err)
			}
			_ = cc.flush(time.Now().Add(time.Second))
			_ = client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			got, _ := io.ReadAll(client)
			if !bytes.Equal(got, want) {
				t.Fatalf("the wire has % x\nwant the first frame and the close: % x", got, want)
			}
		})
	}
}

// corkConn reads with raw read(2)s; it must keep net.Conn's behaviour: data
// as it comes, a read deadline that ends a read as a timeout (how a client
// that stopped answering pings is dropped), EOF when the peer closes, and
// net.ErrClosed after a local close.
func TestCorkConnRawReads(t *testing.T) {
	cc, peer := corkPair(t)
	if cc.raw == nil {
		t.Fatal("a TCP connection must get raw reads and writes here")
	}
	buf := make([]byte, 64)

	go func() { time.Sleep(50 * time.Millisecond); _, _ = peer.Write([]byte("hello")) }()
	if n, err := cc.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}

	_ = cc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := cc.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || readErrorReason(err) != "timeout" {
		t.Fatalf("past the read deadline: %v (reason %q), want a timeout", err, readErrorReason(err))
	}
	if waited := time.Since(start); waited < 90*time.Millisecond {
		t.Fatalf("the read gave up after %v, before its deadline", waited)
	}

	_ = cc.SetReadDeadline(time.Time{})
	_ = peer.Close()
	if _, err := cc.Read(buf); !errors.Is(err, io.EOF) || readErrorReason(err) != "eof" {
		t.Fatalf("after the peer closed: %v, want EOF", err)
	}
	_ = cc.Close()
	if _, err := cc.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after a local close: %v, want net.ErrClosed", err)
	}
}
