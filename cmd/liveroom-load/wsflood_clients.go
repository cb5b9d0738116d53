package main

// The wsflood workload's clients: the flooders, the probe, the history
// seeder.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

type floodStats struct {
	frames, connects, refused atomic.Int64

	mu     sync.Mutex
	closes map[string]int
}

// flood is one hostile client: connect, write resume and cart.add without
// reading until the server cuts it off, learn how it was closed, repeat.
func flood(ctx context.Context, f *wsFlags, token string, i int, sku string, rate float64, st *floodStats) {
	var pace *time.Ticker
	if rate > 0 {
		pace = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer pace.Stop()
	}
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if isLoopback(f.baseURL) {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i%250)+2)}}
		d.NetDialContext = nd.DialContext
	}
	resume := []byte(`{"type":"resume","after_seq":0,"ref":"r"}`)
	for n := 0; ctx.Err() == nil; {
		st.connects.Add(1)
		ws, _, err := d.DialContext(ctx, f.wsURL(token), nil)
		if err != nil {
			st.refused.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		for ctx.Err() == nil {
			if pace != nil {
				select {
				case <-ctx.Done():
				case <-pace.C:
				}
			}
			frame := resume
			if n%2 == 1 {
				frame = fmt.Appendf(nil, `{"type":"cart.add","sku":%q,"qty":1,"key":"f%d-%d","ref":"a"}`, sku, i, n)
			}
			n++
			_ = ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				break
			}
			st.frames.Add(1)
		}
		stop()
		code := "none"
		if ctx.Err() == nil {
			// Read what the server sent, up to its close frame.
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						code = strconv.Itoa(ce.Code)
					}
					break
				}
			}
		} else {
			code = "open at the end"
		}
		ws.Close()
		st.mu.Lock()
		st.closes[code]++
		st.mu.Unlock()
	}
}

// floodProbe is a normal client measuring the round trip of a request.
type floodProbe struct {
	ws   *websocket.Conn
	mu   sync.Mutex
	sent map[string]time.Time
	got  chan time.Duration
	lost atomic.Int64
	seq  int
}

func dialProbe(ctx context.Context, f *wsFlags, token string) (*floodProbe, error) {
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if isLoopback(f.baseURL) {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, 1)}}
		d.NetDialContext = nd.DialContext
	}
	ws, _, err := d.DialContext(ctx, f.wsURL(token), nil)
	if err != nil {
		return nil, err
	}
	p := &floodProbe{ws: ws, sent: map[string]time.Time{}, got: make(chan time.Duration, 4096)}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				close(p.got)
				return
			}
			var ev struct {
				Ref string `json:"ref"`
			}
			if json.Unmarshal(b, &ev) != nil || ev.Ref == "" {
				continue
			}
			p.mu.Lock()
			t0, ok := p.sent[ev.Ref]
			delete(p.sent, ev.Ref)
			p.mu.Unlock()
			if ok {
				p.got <- time.Since(t0)
			}
		}
	}()
	return p, nil
}

func (p *floodProbe) close() { p.ws.Close() }

// run sends a request (a frame of an unknown type: the hub answers it
// with an error carrying its ref, through the same queue as everything
// else) rate times a second for d, and returns the round trips, sorted.
func (p *floodProbe) run(ctx context.Context, d time.Duration, rate float64) []time.Duration {
	var lat []time.Duration
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-ctx.Done():
			return p.finish(lat)
		case <-end:
			return p.finish(lat)
		case l, ok := <-p.got:
			if !ok {
				return p.finish(lat)
			}
			lat = append(lat, l)
		case <-tick.C:
			p.mu.Lock()
			p.seq++
			ref := "p" + strconv.Itoa(p.seq)
			p.sent[ref] = time.Now()
			// Forget probes unanswered for a second: lost.
			for r, t := range p.sent {
				if time.Since(t) > time.Second {
					delete(p.sent, r)
					p.lost.Add(1)
				}
			}
			p.mu.Unlock()
			_ = p.ws.SetWriteDeadline(time.Now().Add(time.Second))
			_ = p.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"wsflood.probe","ref":"`+ref+`"}`))
		}
	}
}

func (p *floodProbe) finish(lat []time.Duration) []time.Duration {
	// Collect what is already here.
	for {
		select {
		case l, ok := <-p.got:
			if ok {
				lat = append(lat, l)
				continue
			}
		default:
		}
		break
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

// seedHistory posts n chat messages, 5 per user (the chat burst), from
// loopback addresses of their own when the server is local.
func seedHistory(ctx context.Context, f *wsFlags, m *minter, n int) error {
	text := strings.Repeat("x", 450)
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for u := 0; u*5 < n; u++ {
		tok, err := m.token(ctx, fmt.Sprintf("wsflood-seed-%d", u), room.RoleViewer)
		if err != nil {
			return err
		}
		if isLoopback(f.baseURL) {
			nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 3, byte(u%250)+1)}}
			d.NetDialContext = nd.DialContext
		}
		ws, _, err := d.DialContext(ctx, f.wsURL(tok), nil)
		if err != nil {
			return err
		}
		for j := 0; j < 5 && u*5+j < n; j++ {
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"chat.send","text":"%d %s"}`, u*5+j, text)); err != nil {
				ws.Close()
				return err
			}
		}
		// Wait until our last message is back: the room has it.
		want := fmt.Sprintf(`"%d %s"`, min(n, u*5+5)-1, text)
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				ws.Close()
				return err
			}
			if bytes.Contains(b, []byte(want)) {
				break
			}
		}
		ws.Close()
	}
	return nil
}

// putFloodProduct makes sure the flooders' product exists (stock 1000).
func putFloodProduct(ctx context.Context, f *wsFlags, sku string) error {
	body := []byte(`{"title":"Flood tee","price_cents":100,"currency":"EUR","stock":1000}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, f.baseURL+"/api/v1/rooms/"+f.room+"/products/"+sku, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("put product: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
		return fmt.Errorf("put product: %s: %s", resp.Status, b)
	}
	return nil
}

// isLoopback reports whether base names a 127.0.0.0/8 host (so the
// clients can stand for distinct addresses).
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}
