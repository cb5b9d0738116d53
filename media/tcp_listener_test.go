package media

import (
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
)

// A client that opens an ICE-TCP connection and never speaks must not hold
// the mux's close (pion waits for its connection handlers, which wait for a
// first packet for up to 30 s by default).
func TestICETCPMuxCloseDoesNotWaitForSilentClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := newICETCPMux(logging.NewDefaultLoggerFactory().NewLogger("test"), ln)
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond) // let the mux accept them
	done := make(chan error, 1)
	go func() { done <- mux.Close() }()
	select {
	case <-done:
	case <-time.After(iceTCPFirstPacket - time.Second):
		t.Fatalf("closing the mux waited for silent clients (still waiting after %v)", iceTCPFirstPacket-time.Second)
	}
	// The silent clients' connections were closed by the server.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("client %d: read succeeded; want its connection closed", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("client %d: still open after the mux closed", i)
		}
	}
}
