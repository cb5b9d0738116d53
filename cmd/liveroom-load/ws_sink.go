package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// sinkClient is a WebSocket client that costs its machine almost nothing:
// it reads in bulk every interval and only walks frame headers (counting
// data frames, answering pings). With thousands of them on the server's
// own machine, the load tool's CPU no longer drowns the server's, and
// latency is measured by a few full "probe" clients instead.
type sinkClient struct {
	conn   net.Conn
	frames atomic.Int64

	// frame walker state
	hdr  []byte
	skip uint64
}

// dialSink does the WebSocket handshake by hand (so no bytes hide in a
// library's buffer) and returns the connection ready for raw reads.
func dialSink(ctx context.Context, d *net.Dialer, rawURL string) (*sinkClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key[:]))
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	s := &sinkClient{conn: conn}
	if n := br.Buffered(); n > 0 { // frames that came with the handshake
		b, _ := br.Peek(n)
		if err := s.feed(b); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return s, nil
}

// run reads every interval until ctx ends or the server closes.
func (s *sinkClient) run(ctx context.Context, interval time.Duration) error {
	buf := make([]byte, 64<<10)
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	for {
		n, err := s.conn.Read(buf)
		if n > 0 {
			if ferr := s.feed(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
		if n < len(buf) && !sleepCtx(ctx, interval) { // caught up: wait for more
			return ctx.Err()
		}
	}
}

var errServerClosed = errors.New("server sent close")

// feed walks server frames (unmasked): counts data frames, answers pings.
func (s *sinkClient) feed(b []byte) error {
	for len(b) > 0 {
		if s.skip > 0 {
			n := min(uint64(len(b)), s.skip)
			s.skip -= n
			b = b[n:]
			continue
		}
		s.hdr = append(s.hdr, b[0])
		b = b[1:]
		if len(s.hdr) < 2 {
			continue
		}
		need := 2
		switch s.hdr[1] & 0x7f {
		case 126:
			need = 4
		case 127:
			need = 10
		}
		if len(s.hdr) < need {
			continue
		}
		var length uint64
		switch need {
		case 2:
			length = uint64(s.hdr[1] & 0x7f)
		case 4:
			length = uint64(binary.BigEndian.Uint16(s.hdr[2:4]))
		default:
			length = binary.BigEndian.Uint64(s.hdr[2:10])
		}
		switch s.hdr[0] & 0x0f {
		case 0x1, 0x2:
			s.frames.Add(1)
		case 0x8:
			return errServerClosed
		case 0x9: // ping (the server's carry no payload): masked empty pong
			_, _ = s.conn.Write([]byte{0x8a, 0x80, 1, 2, 3, 4})
		}
		s.hdr = s.hdr[:0]
		s.skip = length
	}
	return nil
}

func (s *sinkClient) close() { s.conn.Close() }
