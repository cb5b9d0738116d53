package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// aucFrame is what the workload reads of any frame.
type aucFrame struct {
	Type      string          `json:"type"`
	Ref       string          `json:"ref"`
	Seq       uint64          `json:"seq"`
	Code      string          `json:"code"`
	AuctionID string          `json:"auction_id"`
	Amount    int64           `json:"amount_cents"`
	Next      int64           `json:"next_cents"`
	Version   int64           `json:"version"`
	EndsAt    time.Time       `json:"ends_at"`
	Bidder    *room.Identity  `json:"bidder"`
	Winner    *room.Identity  `json:"winner"`
	Order     json.RawMessage `json:"order"`
	Room      json.RawMessage `json:"room"`
}

// aucConn is one WebSocket: its reader keeps the latest price it saw and
// hands frames with a ref to the one request waiting for it.
type aucConn struct {
	ws      *websocket.Conn
	user    string
	wmu     sync.Mutex
	next    atomic.Int64 // next_cents of the highest version seen
	version atomic.Int64
	ends    atomic.Int64 // unix ms
	mu      sync.Mutex
	waiting map[string]chan aucFrame
	events  chan aucFrame // observers and the host: room events, in order
	done    chan struct{}
	won     atomic.Bool
	ended   atomic.Int64 // auction.ended frames seen
}

func dialAuction(ctx context.Context, c *auctionConfig, base, token, user string, observe bool) (*aucConn, error) {
	f := c.ws
	f.baseURL = base
	ws, _, err := f.dialer().DialContext(ctx, f.wsURL(token), nil)
	if err != nil {
		return nil, err
	}
	a := &aucConn{ws: ws, user: user, waiting: map[string]chan aucFrame{}, done: make(chan struct{})}
	if observe {
		a.events = make(chan aucFrame, 1<<16)
	}
	welcome := make(chan struct{})
	go a.read(welcome)
	select {
	case <-welcome:
		return a, nil
	case <-a.done:
		return nil, errors.New("closed before welcome")
	case <-time.After(c.timeout):
		ws.Close()
		return nil, errors.New("no welcome")
	}
}

func (a *aucConn) read(welcome chan struct{}) {
	defer close(a.done)
	first := true
	for {
		_, data, err := a.ws.ReadMessage()
		if err != nil {
			return
		}
		var f aucFrame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		if first {
			first = false
			close(welcome)
			continue
		}
		switch f.Type {
		case "auction.bid", "auction.started", "auction.extended":
			if f.Version >= a.version.Load() {
				a.version.Store(f.Version)
				if f.Next > 0 {
					a.next.Store(f.Next)
				}
				if !f.EndsAt.IsZero() {
					a.ends.Store(f.EndsAt.UnixMilli())
				}
			}
		case "auction.won":
			a.won.Store(true)
		case "auction.ended":
			a.ended.Add(1)
		}
		if f.Ref != "" {
			a.mu.Lock()
			ch := a.waiting[f.Ref]
			delete(a.waiting, f.Ref)
			a.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		} else if a.events != nil {
			select {
			case a.events <- f:
			default:
			}
		}
	}
}

// call sends a frame with a fresh ref and waits for its answer.
func (a *aucConn) call(ctx context.Context, d time.Duration, ref string, v map[string]any) (aucFrame, time.Duration, error) {
	ch := make(chan aucFrame, 1)
	a.mu.Lock()
	a.waiting[ref] = ch
	a.mu.Unlock()
	v["ref"] = ref
	b, _ := json.Marshal(v)
	t0 := time.Now()
	a.wmu.Lock()
	_ = a.ws.SetWriteDeadline(time.Now().Add(d))
	err := a.ws.WriteMessage(websocket.TextMessage, b)
	a.wmu.Unlock()
	if err != nil {
		return aucFrame{}, 0, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case f := <-ch:
		return f, time.Since(t0), nil
	case <-a.done:
		return aucFrame{}, 0, errors.New("connection closed")
	case <-t.C:
		return aucFrame{}, 0, errNoReply
	case <-ctx.Done():
		return aucFrame{}, 0, ctx.Err()
	}
}

func (a *aucConn) close() { a.ws.Close(); <-a.done }
