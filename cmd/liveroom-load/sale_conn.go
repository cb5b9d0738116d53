package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// saleInfo is the wire `sale` object.
type saleInfo struct {
	ID           string    `json:"id"`
	SKU          string    `json:"sku"`
	Quantity     int       `json:"quantity"`
	Remaining    int       `json:"remaining"`
	PerUserLimit int       `json:"per_user_limit"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	State        string    `json:"state"`
}

// saleFrame is the part of a server frame the sale workload reads.
type saleFrame struct {
	Type    string    `json:"type"`
	Ref     string    `json:"ref"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Sale    *saleInfo `json:"sale"`    // sale.started
	SaleID  string    `json:"sale_id"` // sale.ended, sale.stock
	Room    *struct {
		Sale *saleInfo `json:"sale"`
	} `json:"room"` // welcome
	Items []struct {
		SaleID string `json:"sale_id"`
		Qty    int    `json:"qty"`
		Key    string `json:"key"`
	} `json:"items"` // cart
	Order *struct {
		ID string `json:"id"`
	} `json:"order"` // order.confirmed
}

// unitsFor is the qty of the cart item added with key (0 if none).
func (f *saleFrame) unitsFor(key string) int {
	for _, it := range f.Items {
		if it.Key == key {
			return it.Qty
		}
	}
	return 0
}

type arrival struct {
	at time.Time
	f  saleFrame
}

// saleConn is one WebSocket of the workload: its reader goroutine passes
// on the frames the owner waits for; only the owner writes.
type saleConn struct {
	ws      *websocket.Conn
	welcome chan saleFrame // the welcome, once
	frames  chan arrival   // frames with a ref, and (host) sale lifecycle events
	done    chan struct{}  // closed when the reader exits
	err     error          // why the reader exited; read after done
	host    bool
}

func newSaleConn(ws *websocket.Conn, host bool) *saleConn {
	c := &saleConn{ws: ws, welcome: make(chan saleFrame, 1), frames: make(chan arrival, 16), done: make(chan struct{}), host: host}
	go c.read()
	return c
}

func (c *saleConn) read() {
	defer close(c.done)
	welcomed := false
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		at := time.Now()
		if welcomed && !c.wants(data) {
			continue // sale.stock, viewers, chat: read, not decoded
		}
		var f saleFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("bad frame %.80q: %w", data, err)
			return
		}
		switch {
		case f.Type == "welcome" && !welcomed:
			welcomed = true
			c.welcome <- f
		case f.Ref != "" || (c.host && (f.Type == "sale.started" || f.Type == "sale.ended")):
			select {
			case c.frames <- arrival{at, f}:
			default: // nobody waits for it (a late answer after a timeout)
			}
		}
	}
}

// wants reports whether a frame after the welcome may be one the owner
// waits for (it has a ref, or it is a host's sale lifecycle event). The
// server writes "type" first and a top-level ref as "ref":, so the check
// needs no decoder; a "ref": inside some other field only costs a decode.
// Thousands of buyers each get every sale.stock, and decoding them all
// would make the load tool, not the server, the figure on shared cores.
func (c *saleConn) wants(data []byte) bool {
	if bytes.Contains(data, []byte(`"ref":`)) {
		return true
	}
	return c.host && (bytes.HasPrefix(data, []byte(`{"type":"sale.started"`)) || bytes.HasPrefix(data, []byte(`{"type":"sale.ended"`)))
}

// waitWelcome waits for the welcome frame.
func (c *saleConn) waitWelcome(ctx context.Context, d time.Duration) (saleFrame, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case f := <-c.welcome:
		return f, nil
	case <-c.done:
		return saleFrame{}, fmt.Errorf("closed before welcome: %w", c.err)
	case <-t.C:
		return saleFrame{}, errors.New("no welcome")
	case <-ctx.Done():
		return saleFrame{}, ctx.Err()
	}
}

var errNoReply = errors.New("no reply")

// await waits for the first frame that match accepts.
func (c *saleConn) await(ctx context.Context, d time.Duration, match func(*saleFrame) bool) (arrival, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case a := <-c.frames:
			if match(&a.f) {
				return a, nil
			}
		case <-c.done:
			return arrival{}, fmt.Errorf("connection closed: %w", c.err)
		case <-t.C:
			return arrival{}, errNoReply
		case <-ctx.Done():
			return arrival{}, ctx.Err()
		}
	}
}

func (c *saleConn) send(v map[string]any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *saleConn) close() {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.ws.Close()
	<-c.done
}

// startSale sends sale.start and returns the sale from sale.started (the
// answer is a room event without ref; an error carries the ref).
func (c *saleConn) startSale(ctx context.Context, cfg *saleConfig, ref string, known map[string]bool) (saleInfo, error) {
	m := map[string]any{"type": "sale.start", "ref": ref, "sku": cfg.sku, "price_cents": cfg.price,
		"quantity": cfg.quantity, "per_user_limit": cfg.perUser, "starts_in_s": cfg.startsIn, "duration_s": cfg.duration}
	if cfg.payWithin > 0 {
		m["pay_within_s"] = cfg.payWithin
	}
	if err := c.send(m); err != nil {
		return saleInfo{}, err
	}
	a, err := c.await(ctx, cfg.timeout, func(f *saleFrame) bool {
		return f.Ref == ref || (f.Type == "sale.started" && f.Sale != nil && f.Sale.SKU == cfg.sku && !known[f.Sale.ID])
	})
	if err != nil {
		return saleInfo{}, fmt.Errorf("sale.start: %w", err)
	}
	if a.f.Type == "error" {
		return saleInfo{}, fmt.Errorf("sale.start: %s: %s", a.f.Code, a.f.Message)
	}
	known[a.f.Sale.ID] = true
	return *a.f.Sale, nil
}

// stopSale ends a sale; one that has ended already is fine.
func (c *saleConn) stopSale(ctx context.Context, cfg *saleConfig, ref, saleID string) error {
	if err := c.send(map[string]any{"type": "sale.stop", "ref": ref, "sale_id": saleID}); err != nil {
		return err
	}
	a, err := c.await(ctx, cfg.timeout, func(f *saleFrame) bool {
		return f.Ref == ref || (f.Type == "sale.ended" && f.SaleID == saleID)
	})
	if err != nil {
		return fmt.Errorf("sale.stop: %w", err)
	}
	if a.f.Type == "error" && a.f.Code != "sale_not_active" {
		return fmt.Errorf("sale.stop: %s: %s", a.f.Code, a.f.Message)
	}
	return nil
}

// buyerOutcome is what one buyer got in one sale.
type buyerOutcome struct {
	result   string // "ok", an error code, "no_reply", "send_failed"
	units    int
	latency  time.Duration
	answered time.Time
	checkout string // "", "confirmed", an error code, "no_reply"
	coLat    time.Duration
}

// buy is one buyer's part of a sale: cart.add when start closes, then
// cart.checkout if it reserved and checkout is set.
func (c *saleConn) buy(ctx context.Context, cfg *saleConfig, saleID string, i int, start <-chan struct{}, prog *saleProgress) buyerOutcome {
	key := fmt.Sprintf("%s-b%d", saleID, i)
	var o buyerOutcome
	<-start
	res, a, sent := c.request(ctx, cfg.timeout, map[string]any{"type": "cart.add", "sale_id": saleID, "qty": cfg.qty, "key": key, "ref": "add-" + key}, "cart")
	o.result = res
	if res == "ok" {
		o.units = a.f.unitsFor(key)
	}
	if !a.at.IsZero() {
		o.latency, o.answered = a.at.Sub(sent), a.at
	}
	prog.count(o.result)
	if o.result != "ok" || !cfg.checkout {
		return o
	}
	ref := "pay-" + key
	res, a, sent = c.request(ctx, cfg.timeout, map[string]any{"type": "cart.checkout", "key": ref, "ref": ref}, "order.confirmed")
	o.checkout = res
	switch res {
	case "send_failed":
		return o
	case "ok":
		o.checkout, o.coLat = "confirmed", a.at.Sub(sent)
	}
	prog.checkedOut()
	return o
}

// request sends m and waits for the frame answering its ref. The result is
// "ok" for an answer of type want, else the error's code, "no_reply",
// "send_failed" or "unexpected_<type>"; the answer (at is zero when there
// is none) and when m was sent come with it.
func (c *saleConn) request(ctx context.Context, timeout time.Duration, m map[string]any, want string) (string, arrival, time.Time) {
	ref, _ := m["ref"].(string)
	sent := time.Now()
	if err := c.send(m); err != nil {
		return "send_failed", arrival{}, sent
	}
	a, err := c.await(ctx, timeout, func(f *saleFrame) bool { return f.Ref == ref })
	switch {
	case err != nil:
		return "no_reply", arrival{}, sent
	case a.f.Type == want:
		return "ok", a, sent
	case a.f.Type == "error":
		return a.f.Code, a, sent
	default:
		return "unexpected_" + a.f.Type, a, sent
	}
}

// saleProgress counts answers for the progress line.
type saleProgress struct {
	mu        sync.Mutex
	answered  int
	ok        int
	soldOut   int
	other     int
	checkouts int
}

func (p *saleProgress) count(result string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answered++
	switch result {
	case "ok":
		p.ok++
	case "sold_out":
		p.soldOut++
	default:
		p.other++
	}
}

func (p *saleProgress) checkedOut() {
	p.mu.Lock()
	p.checkouts++
	p.mu.Unlock()
}

func (p *saleProgress) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("answered %d (ok %d, sold_out %d, other %d), checkouts %d", p.answered, p.ok, p.soldOut, p.other, p.checkouts)
}
