package web

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"liveroom/room"
)

// A client that sends its body a byte at a time cannot hold a connection:
// through the real server, the admin API's body is cut at http.body_timeout
// and the connection closed, long before the body would have arrived.
func TestSlowBodyIsCut(t *testing.T) {
	auth, err := room.NewAuth(room.AuthConfig{JWTSecret: "test-secret-0123456789abcdef", AdminKey: testAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	rooms, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: "127.0.0.1:0", BodyTimeout: 300 * time.Millisecond}
	cfg.SetDefaults()
	srv := httptest.NewServer(New(cfg, Deps{Auth: auth, Rooms: rooms, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"id":"slow","title":"A room sent slowly"}` + strings.Repeat(" ", 60)
	fmt.Fprintf(c, "POST /api/v1/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", testAdminKey, len(body))
	// One byte every 100ms: the whole body would take 10s.
	start := time.Now()
	sent := make(chan int)
	go func() {
		i := 0
		for ; i < len(body); i++ {
			if _, err := c.Write([]byte{body[i]}); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		sent <- i
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("slow body answered %d %s, want a 4xx", resp.StatusCode, b)
	}
	c.Close()
	n := <-sent
	t.Logf("answered %d after %s, with %d of %d body bytes sent", resp.StatusCode, took, n, len(body))
	if n >= len(body) {
		t.Fatalf("the whole body was read (%s): nothing was cut", took)
	}
	if _, err := rooms.Get(t.Context(), "slow"); err == nil {
		t.Error("the room was created from a cut body")
	}
	// A prompt client on the same server is unaffected.
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/rooms", strings.NewReader(`{"id":"fast","title":"Fast"}`))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("prompt client: %d", resp.StatusCode)
	}
}

// The deadline covers the body only: once it is read the handler may take
// longer than the deadline without its request being cancelled, and a
// long response (no body, like a WebSocket or an HLS stream) is not cut.
func TestBodyDeadlineSparesHandlerAndResponse(t *testing.T) {
	const d = 200 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slow-handler", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(3 * d):
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "got %d", len(b))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(d)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, withBodyDeadline(w, r, d))
	}))
	defer srv.Close()

	for range 2 { // twice: the kept-alive connection works after it
		resp, err := srv.Client().Post(srv.URL+"/slow-handler", "text/plain", strings.NewReader(strings.Repeat("x", 5000)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "got 5000" {
			t.Fatalf("handler slower than the body deadline: %d %s", resp.StatusCode, b)
		}
	}
	resp, err := srv.Client().Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(b), "chunk") != 5 {
		t.Fatalf("long response: %q, %v", b, err)
	}
}
