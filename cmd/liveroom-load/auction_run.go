package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// auctionResult is the run's figures and checks.
type auctionResult struct {
	Room          string         `json:"room"`
	AuctionID     string         `json:"auction_id"`
	Bidders       int            `json:"bidders"`
	Nodes         int            `json:"nodes"`
	Sent          int            `json:"bids_sent"`
	Outcomes      map[string]int `json:"outcomes"` // accepted, or an error code
	AcceptedPS    float64        `json:"accepted_per_s"`
	Versions      int64          `json:"versions"`
	Extensions    int            `json:"extensions"`
	OriginalEnd   time.Time      `json:"original_end"`
	FinalEnd      time.Time      `json:"final_end"`
	EndedSeenAt   time.Time      `json:"ended_seen_at"`
	Winner        string         `json:"winner"`
	AmountCents   int64          `json:"amount_cents"`
	Orders        int            `json:"orders"`
	FloodP50ms    float64        `json:"flood_p50_ms"`
	FloodP99ms    float64        `json:"flood_p99_ms"`
	AllP50ms      float64        `json:"p50_ms"`
	AllP99ms      float64        `json:"p99_ms"`
	RunSeconds    float64        `json:"run_seconds"`
	Problems      []string       `json:"problems"`
	highBidErrors int
}

func (r *auctionResult) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

type bidRecord struct {
	user   string
	amount int64
	code   string // "" accepted
	lat    time.Duration
	flood  bool
}

// runAuction runs one auction storm and checks it: the accepted bids rise
// version by version, the winner is the highest, there is one end and one
// order, and the end moved only as the soft close says.
func runAuction(ctx context.Context, c auctionConfig) (*auctionResult, error) {
	raiseFileLimit(c.ws.clients + 64)
	mint, err := newMinter(&c.ws)
	if err != nil {
		return nil, err
	}
	adm := saleConfig{ws: c.ws, sku: c.sku, quantity: 1, price: c.start}
	if err := adm.ensureRoom(ctx); err != nil {
		return nil, err
	}
	if err := adm.putProduct(ctx); err != nil {
		return nil, err
	}
	tok := func(sub string, role room.Role) string {
		t, err := mint.token(ctx, sub, role)
		if err != nil {
			return ""
		}
		return t
	}
	host, err := dialAuction(ctx, &c, c.ws.baseURL, tok("auction-host", room.RoleHost), "auction-host", true)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	defer host.close()
	var observers []*aucConn
	for i, u := range c.bidURLs {
		o, err := dialAuction(ctx, &c, u, tok(fmt.Sprintf("auction-watch-%d", i), room.RoleViewer), "", true)
		if err != nil {
			return nil, fmt.Errorf("observer on %s: %w", u, err)
		}
		defer o.close()
		observers = append(observers, o)
	}
	bidders := make([]*aucConn, c.ws.clients)
	failed, ferr := c.ws.connectAll(ctx, c.ws.clients, func(ctx context.Context, i int) error {
		user := fmt.Sprintf("bidder-%d", i)
		b, err := dialAuction(ctx, &c, c.bidURLs[i%len(c.bidURLs)], tok(user, room.RoleViewer), user, false)
		if err == nil {
			bidders[i] = b
		}
		return err
	})
	defer func() {
		for _, b := range bidders {
			if b != nil {
				b.close()
			}
		}
	}()
	if failed > 0 {
		return nil, fmt.Errorf("%d bidders could not connect: %w", failed, ferr)
	}

	// auction.start is answered by the room event (an error has the ref).
	errc := make(chan aucFrame, 1)
	host.mu.Lock()
	host.waiting["start"] = errc
	host.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"type": "auction.start", "sku": c.sku, "ref": "start",
		"start_cents": c.start, "duration_s": c.duration, "extend_s": c.extend})
	if err := host.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("auction.start: %w", err)
	}
	var st aucFrame
	for st.Type != "auction.started" {
		select {
		case st = <-host.events:
		case f := <-errc:
			return nil, fmt.Errorf("auction.start: %s", f.Code)
		case <-time.After(c.timeout):
			return nil, errors.New("no auction.started")
		}
	}
	res := &auctionResult{Room: c.ws.room, AuctionID: st.AuctionID, Bidders: c.ws.clients, Nodes: len(c.bidURLs),
		OriginalEnd: st.EndsAt, Outcomes: map[string]int{}}
	for _, b := range bidders {
		b.next.Store(c.start)
	}
	t0 := time.Now()
	floodAt := st.EndsAt.Add(-c.flood)
	var mu sync.Mutex
	var recs []bidRecord
	var wg sync.WaitGroup
	var keys atomic.Int64
	bid := func(b *aucConn, kind string, amount int64, flood bool) {
		field := "amount_cents"
		if kind == "auction.max" {
			field = "max_cents"
		}
		k := fmt.Sprintf("k%d", keys.Add(1))
		f, lat, err := b.call(ctx, c.timeout, k, map[string]any{"type": kind, "auction_id": st.AuctionID, field: amount, "key": k})
		r := bidRecord{user: b.user, amount: amount, lat: lat, flood: flood}
		switch {
		case err != nil:
			r.code = "no_reply"
		case f.Type == "error":
			r.code = f.Code
		}
		if kind == "auction.max" && r.code == "" {
			r.code = "max_set"
		}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i, b := range bidders {
		proxy := float64(i) < c.proxies*float64(len(bidders))
		times := make([]time.Duration, c.bids)
		for j := range times {
			times[j] = time.Duration(rng.Int64N(int64(time.Until(floodAt))))
		}
		sort.Slice(times, func(x, y int) bool { return times[x] < times[y] })
		floodOff := time.Duration(rng.Int64N(int64(c.flood)))
		maxSteps := 1 + rng.Int64N(10) // a maximum some increments above the price when it is set
		maxAt := time.Duration(rng.Int64N(int64(time.Until(floodAt))))
		steps := rng.Int64N(3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			begin := time.Now()
			maxed := !proxy
			for _, at := range times {
				if !maxed && maxAt < at {
					time.Sleep(time.Until(begin.Add(maxAt)))
					n := b.next.Load()
					bid(b, "auction.max", n+maxSteps*Increment(n), false)
					maxed = true
				}
				time.Sleep(time.Until(begin.Add(at)))
				n := b.next.Load()
				bid(b, "auction.bid", n+steps*Increment(n), false)
			}
			if !maxed {
				time.Sleep(time.Until(begin.Add(maxAt)))
				n := b.next.Load()
				bid(b, "auction.max", n+maxSteps*Increment(n), false)
			}
			time.Sleep(time.Until(floodAt.Add(floodOff)))
			n := b.next.Load()
			bid(b, "auction.bid", n+steps*Increment(n), true)
		}()
	}
	if c.midway != nil {
		time.Sleep(time.Until(st.EndsAt.Add(-time.Duration(c.duration) * time.Second / 2)))
		c.midway()
	}
	wg.Wait()

	// Every observer (one per node) sees the room's events in seq order.
	type seen struct {
		amount int64
		user   string
		ends   time.Time
	}
	byVersion := map[int64]seen{}
	endedSeqs := map[uint64]aucFrame{}
	var endedAt time.Time
	deadline := time.After(time.Duration(c.duration+c.extend*4)*time.Second + c.timeout)
	for _, o := range observers {
	loop:
		for {
			select {
			case f := <-o.events:
				switch f.Type {
				case "auction.bid":
					if f.Bidder != nil {
						byVersion[f.Version] = seen{f.Amount, f.Bidder.ID, f.EndsAt}
					}
				case "auction.ended":
					endedSeqs[f.Seq] = f
					if endedAt.IsZero() {
						endedAt = time.Now()
					}
					break loop
				}
			case <-o.done:
				break loop
			case <-deadline:
				res.problem("no auction.ended within the duration and extensions")
				break loop
			}
		}
	}
	res.RunSeconds = time.Since(t0).Seconds()
	res.EndedSeenAt = endedAt
	if len(endedSeqs) != 1 {
		res.problem("auction.ended events: got %d distinct, want 1", len(endedSeqs))
	}
	var ended aucFrame
	for _, f := range endedSeqs {
		ended = f
	}
	if ended.Winner != nil {
		res.Winner, res.AmountCents = ended.Winner.ID, ended.Amount
	}

	// The accepted bids, version by version, each above the one before.
	var vs []int64
	for v := range byVersion {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	res.Versions = int64(len(vs))
	prevEnd := st.EndsAt
	for i, v := range vs {
		s := byVersion[v]
		if v != int64(i+1) {
			res.problem("versions are not 1..n: %d at position %d", v, i+1)
			break
		}
		if i > 0 && s.amount <= byVersion[vs[i-1]].amount {
			res.problem("version %d at %d does not beat version %d at %d", v, s.amount, vs[i-1], byVersion[vs[i-1]].amount)
		}
		if s.ends.Before(prevEnd) {
			res.problem("version %d moved the end back", v)
		}
		if s.ends.After(prevEnd) {
			res.Extensions++
			if c.extend == 0 || s.ends.Sub(prevEnd) > time.Duration(c.extend)*time.Second {
				res.problem("version %d moved the end by %s (extend %ds)", v, s.ends.Sub(prevEnd), c.extend)
			}
		}
		prevEnd = s.ends
	}
	res.FinalEnd = prevEnd
	if len(vs) > 0 {
		last := byVersion[vs[len(vs)-1]]
		if last.user != res.Winner || last.amount != res.AmountCents {
			res.problem("winner %s at %d, but the last accepted bid is %s at %d", res.Winner, res.AmountCents, last.user, last.amount)
		}
	} else if ended.Winner != nil {
		res.problem("a winner without any accepted bid")
	}

	// Outcomes: a higher bid than the winning amount was refused only for
	// being late (or by the leader); no other code is acceptable.
	var all, flood []time.Duration
	accepted := 0
	for _, r := range recs {
		res.Sent++
		name := r.code
		if name == "" {
			name = "accepted"
			accepted++
		}
		res.Outcomes[name]++
		switch r.code {
		case "", "max_set", "bid_too_low", "already_leading", "auction_ended":
		default:
			res.problem("bid by %s at %d: %s", r.user, r.amount, r.code)
		}
		// The price only rises (nobody is removed here), so a bid of the
		// winning amount plus its increment was never too low, and no
		// accepted plain bid is above the winning amount.
		if r.code == "bid_too_low" && r.amount >= res.AmountCents+Increment(res.AmountCents) && res.Winner != "" {
			res.highBidErrors++
		}
		if r.code == "" && r.amount > res.AmountCents {
			res.problem("a bid by %s at %d was accepted above the winning %d", r.user, r.amount, res.AmountCents)
		}
		if r.lat > 0 {
			all = append(all, r.lat)
			if r.flood {
				flood = append(flood, r.lat)
			}
		}
	}
	if res.highBidErrors > 0 {
		res.problem("%d bids above the winning amount were refused as too low", res.highBidErrors)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	sort.Slice(flood, func(i, j int) bool { return flood[i] < flood[j] })
	res.AllP50ms, res.AllP99ms = ms(percentile(all, 0.50)), ms(percentile(all, 0.99))
	res.FloodP50ms, res.FloodP99ms = ms(percentile(flood, 0.50)), ms(percentile(flood, 0.99))
	res.AcceptedPS = float64(accepted) / time.Since(t0).Seconds()

	// Exactly one order, the winner's, at the winning amount.
	if err := c.countOrders(ctx, res); err != nil {
		res.problem("orders: %v", err)
	}
	if res.Winner != "" {
		// auction.won follows auction.ended (the closing node sends both)
		won := false
		for deadline := time.Now().Add(c.timeout); !won && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, b := range bidders {
				if b.user == res.Winner && b.won.Load() {
					won = true
				}
			}
		}
		if !won {
			res.problem("the winner was not sent auction.won")
		}
	}
	return res, nil
}

func (c *auctionConfig) countOrders(ctx context.Context, res *auctionResult) error {
	base := c.ws.baseURL
	if c.ordersURL != "" {
		base = c.ordersURL
	}
	u := base + "/api/v1/rooms/" + url.PathEscape(c.ws.room) + "/orders?limit=500"
	var page struct {
		Orders []struct {
			User       string `json:"user"`
			TotalCents int64  `json:"total_cents"`
			Items      []struct {
				AuctionID string `json:"auction_id"`
			} `json:"items"`
		} `json:"orders"`
	}
	if _, err := apiCall(ctx, http.MethodGet, u, c.ws.adminKey, nil, &page); err != nil {
		return err
	}
	for _, o := range page.Orders {
		if len(o.Items) == 1 && o.Items[0].AuctionID == res.AuctionID {
			res.Orders++
			if o.User != res.Winner || o.TotalCents != res.AmountCents {
				res.problem("order for %s at %d, winner %s at %d", o.User, o.TotalCents, res.Winner, res.AmountCents)
			}
		}
	}
	want := 0
	if res.Winner != "" {
		want = 1
	}
	if res.Orders != want {
		res.problem("orders of the auction: got %d, want %d", res.Orders, want)
	}
	return nil
}

func (r *auctionResult) print(w io.Writer) {
	var codes []string
	for k, v := range r.Outcomes {
		codes = append(codes, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(codes)
	printTable(w, [][2]string{
		{"auction", r.AuctionID + " in " + r.Room},
		{"bidders / nodes", fmt.Sprintf("%d / %d", r.Bidders, r.Nodes)},
		{"bids sent", fmt.Sprintf("%d (%s)", r.Sent, strings.Join(codes, ", "))},
		{"accepted bids/s", fmt.Sprintf("%.0f", r.AcceptedPS)},
		{"lead changes", fmt.Sprint(r.Versions)},
		{"extensions", fmt.Sprintf("%d (end %s -> %s)", r.Extensions, r.OriginalEnd.Format("15:04:05.000"), r.FinalEnd.Format("15:04:05.000"))},
		{"winner", fmt.Sprintf("%s at %d cents, %d order(s)", r.Winner, r.AmountCents, r.Orders)},
		{"bid round trip p50/p99", fmt.Sprintf("%.1f / %.1f ms", r.AllP50ms, r.AllP99ms)},
		{"last-second flood p50/p99", fmt.Sprintf("%.1f / %.1f ms", r.FloodP50ms, r.FloodP99ms)},
		{"problems", fmt.Sprint(len(r.Problems))},
	})
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  -", p)
	}
}

// Increment mirrors cart.Increment (the load tool talks only the protocol).
func Increment(price int64) int64 {
	switch {
	case price < 2_000:
		return 100
	case price < 10_000:
		return 200
	case price < 50_000:
		return 500
	case price < 100_000:
		return 1_000
	case price < 500_000:
		return 2_500
	}
	return (price + 9_999) / 10_000 * 100
}
