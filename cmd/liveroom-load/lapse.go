package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"liveroom/room"
)

// lapseConfig is one `lapse` run (docs/orders.md): a flash sale whose
// orders await payment; the merchant pays all but --unpaid of them through
// the admin API; the unpaid ones lapse after --pay-within and their units
// go back to the running sale, where the buyers who lost the first storm
// take them in a second one.
type lapseConfig struct {
	sale      saleConfig
	unpaid    int
	payWithin int
}

// lapseResult is what a lapse run measured and found.
type lapseResult struct {
	Room          string   `json:"room"`
	Buyers        int      `json:"buyers"`
	Quantity      int      `json:"quantity"`
	Unpaid        int      `json:"unpaid"`
	FirstWinners  int      `json:"first_winners"`
	Paid          int      `json:"paid"`
	PaidPerSec    float64  `json:"paid_per_s"` // POST …/paid through the admin API, 16 at a time
	Lapsed        int      `json:"lapsed"`
	LapseAfterS   float64  `json:"lapse_after_s"` // from the end of the last window to seeing every lapse (polled every 50ms)
	SecondWinners int      `json:"second_winners"`
	StatesListed  []string `json:"states_listed"`
	Problems      []string `json:"problems"`
}

func lapseCmd(ctx context.Context, args []string, out io.Writer) error {
	var c lapseConfig
	fs := flag.NewFlagSet("lapse", flag.ContinueOnError)
	c.sale.register(fs)
	fs.IntVar(&c.unpaid, "unpaid", 30, "winners who never pay: their orders lapse and the units go back on sale")
	fs.IntVar(&c.payWithin, "pay-within", 5, "the sale's payment window in seconds (pay_within_s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	c.sale.progress = os.Stderr
	res, err := runLapse(ctx, c)
	if err != nil {
		return err
	}
	if c.sale.ws.json {
		if err := printJSON(out, res); err != nil {
			return err
		}
	} else {
		res.print(out)
	}
	if len(res.Problems) > 0 {
		return fmt.Errorf("check failed: %s", strings.Join(res.Problems, "; "))
	}
	return nil
}

func (c *lapseConfig) check() error {
	c.sale.checkout, c.sale.qty, c.sale.perUser = true, 1, 1
	if err := c.sale.check(); err != nil {
		return err
	}
	switch {
	case c.sale.ws.adminKey == "":
		return errors.New("--admin-key is required (the merchant reports payments through the admin API)")
	case c.unpaid < 1 || c.unpaid > c.sale.quantity:
		return errors.New("--unpaid: must be 1..--quantity")
	case c.payWithin < 1 || c.payWithin > 3600:
		return errors.New("--pay-within: must be 1..3600 seconds")
	case c.sale.ws.clients < c.sale.quantity+c.unpaid:
		return errors.New("--buyers: must be at least --quantity + --unpaid (losers of the first storm buy the lapsed units)")
	}
	return nil
}

func runLapse(ctx context.Context, cfg lapseConfig) (*lapseResult, error) {
	sc := &cfg.sale
	f := &sc.ws
	raiseFileLimit(f.clients + 16)
	if err := sc.ensureRoom(ctx); err != nil {
		return nil, err
	}
	if err := sc.putProduct(ctx); err != nil {
		return nil, err
	}
	m, err := newMinter(f)
	if err != nil {
		return nil, err
	}
	res := &lapseResult{Room: f.room, Buyers: f.clients, Quantity: sc.quantity, Unpaid: cfg.unpaid, Problems: []string{}}
	tag := room.RandomID(4)
	hostTok, err := m.token(ctx, "lapse-host-"+tag, room.RoleHost)
	if err != nil {
		return nil, err
	}
	d := f.dialer()
	hws, _, err := d.DialContext(ctx, f.wsURL(hostTok), nil)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	host := newSaleConn(hws, true)
	defer host.close()
	w, err := host.waitWelcome(ctx, sc.timeout)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	known := map[string]bool{}
	if w.Room != nil && w.Room.Sale != nil {
		known[w.Room.Sale.ID] = true
		if s := w.Room.Sale; s.SKU == sc.sku && s.State != "ended" {
			if err := host.stopSale(ctx, sc, "stop-old", s.ID); err != nil {
				return nil, err
			}
		}
	}
	buyers := make([]*saleConn, f.clients)
	_, firstErr := f.connectAll(ctx, f.clients, func(ctx context.Context, i int) error {
		tok, err := m.token(ctx, fmt.Sprintf("lapse-buyer-%s-%d", tag, i), room.RoleViewer)
		if err != nil {
			return err
		}
		ws, _, err := d.DialContext(ctx, f.wsURL(tok), nil)
		if err != nil {
			return err
		}
		c := newSaleConn(ws, false)
		if _, err := c.waitWelcome(ctx, sc.timeout); err != nil {
			c.close()
			return err
		}
		buyers[i] = c
		return nil
	})
	live := slices.DeleteFunc(buyers, func(c *saleConn) bool { return c == nil })
	defer func() {
		var wg sync.WaitGroup
		for _, c := range live {
			wg.Go(c.close)
		}
		wg.Wait()
	}()
	if len(live) < sc.quantity+cfg.unpaid {
		return nil, fmt.Errorf("only %d buyers connected: %v", len(live), firstErr)
	}

	// The sale, with its own payment window.
	ref := "start-lapse"
	if err := host.send(map[string]any{"type": "sale.start", "ref": ref, "sku": sc.sku, "price_cents": sc.price,
		"quantity": sc.quantity, "per_user_limit": 1, "duration_s": sc.duration, "pay_within_s": cfg.payWithin}); err != nil {
		return nil, err
	}
	a, err := host.await(ctx, sc.timeout, func(f *saleFrame) bool {
		return f.Ref == ref || (f.Type == "sale.started" && f.Sale != nil && f.Sale.SKU == sc.sku && !known[f.Sale.ID])
	})
	if err != nil || a.f.Type == "error" {
		return nil, fmt.Errorf("sale.start: %v %s %s", err, a.f.Code, a.f.Message)
	}
	saleID := a.f.Sale.ID
	defer func() { _ = host.stopSale(context.WithoutCancel(ctx), sc, "stop-lapse", saleID) }()

	storm := func(who []int) []int {
		var prog saleProgress
		outs := make([]buyerOutcome, len(who))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for k, i := range who {
			wg.Go(func() { outs[k] = live[i].buy(ctx, sc, saleID, i, start, &prog) })
		}
		time.Sleep(20 * time.Millisecond)
		close(start)
		wg.Wait()
		var won []int
		for k, o := range outs {
			if o.result == "ok" && o.checkout == "confirmed" {
				won = append(won, who[k])
			}
		}
		return won
	}
	everyone := make([]int, len(live))
	for i := range everyone {
		everyone[i] = i
	}
	won := storm(everyone)
	res.FirstWinners = len(won)
	if len(won) != sc.quantity {
		res.Problems = append(res.Problems, fmt.Sprintf("first storm: %d orders, want %d", len(won), sc.quantity))
	}

	// The merchant pays all but --unpaid, 16 requests at a time.
	awaiting, due, err := cfg.ordersDue(ctx, "awaiting_payment", saleID)
	if err != nil {
		return nil, err
	}
	// The oldest --unpaid stay unpaid; payBy is the end of the last of
	// their windows.
	var toPay []string
	var payBy time.Time
	if len(awaiting) > cfg.unpaid {
		toPay, payBy = awaiting[cfg.unpaid:], due[cfg.unpaid-1]
	}
	began := time.Now()
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, id := range toPay {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := apiCall(ctx, http.MethodPost, sc.roomURL()+"/orders/"+url.PathEscape(id)+"/paid", f.adminKey, nil, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Problems = append(res.Problems, "pay: "+err.Error())
				return
			}
			res.Paid++
		})
	}
	wg.Wait()
	if el := time.Since(began).Seconds(); el > 0 {
		res.PaidPerSec = float64(res.Paid) / el
	}

	// Wait for the lapse of the unpaid ones.
	deadline := payBy.Add(sc.timeout)
	for {
		cancelled, err := cfg.orders(ctx, "cancelled", saleID)
		if err != nil {
			return nil, err
		}
		res.Lapsed = len(cancelled)
		if res.Lapsed >= cfg.unpaid || time.Now().After(deadline) {
			res.LapseAfterS = time.Since(payBy).Seconds()
			break
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if res.Lapsed != cfg.unpaid {
		res.Problems = append(res.Problems, fmt.Sprintf("%d orders lapsed, want %d", res.Lapsed, cfg.unpaid))
	}

	// The losers storm again: exactly the lapsed units are there.
	winner := map[int]bool{}
	for _, i := range won {
		winner[i] = true
	}
	var losers []int
	for i := range live {
		if !winner[i] {
			losers = append(losers, i)
		}
	}
	res.SecondWinners = len(storm(losers))
	if res.SecondWinners != res.Lapsed {
		res.Problems = append(res.Problems, fmt.Sprintf("second storm: %d orders, want %d (the lapsed units)", res.SecondWinners, res.Lapsed))
	}
	sold := 0 // paid + awaiting: one unit each
	for _, st := range []string{"paid", "awaiting_payment", "cancelled"} {
		ids, err := cfg.orders(ctx, st, saleID)
		if err != nil {
			return nil, err
		}
		res.StatesListed = append(res.StatesListed, fmt.Sprintf("%s %d", st, len(ids)))
		sold += len(ids)
		if st == "cancelled" {
			sold -= len(ids)
		}
	}
	if sold != sc.quantity {
		res.Problems = append(res.Problems, fmt.Sprintf("paid + awaiting orders hold %d units, want %d", sold, sc.quantity))
	}
	return res, nil
}

// orders lists the ids of the sale's orders in state, oldest first.
func (c *lapseConfig) orders(ctx context.Context, state, saleID string) ([]string, error) {
	ids, _, err := c.ordersDue(ctx, state, saleID)
	return ids, err
}

// ordersDue is orders and the pay_by of each.
func (c *lapseConfig) ordersDue(ctx context.Context, state, saleID string) ([]string, []time.Time, error) {
	var ids []string
	var due []time.Time
	cursor := ""
	for {
		u := c.sale.roomURL() + "/orders?limit=500&state=" + state
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Orders []struct {
				ID    string     `json:"id"`
				PayBy *time.Time `json:"pay_by"`
				Items []struct {
					SaleID string `json:"sale_id"`
				} `json:"items"`
			} `json:"orders"`
			Next string `json:"next"`
		}
		if _, err := apiCall(ctx, http.MethodGet, u, c.sale.ws.adminKey, nil, &page); err != nil {
			return nil, nil, err
		}
		for _, o := range page.Orders {
			if len(o.Items) > 0 && o.Items[0].SaleID == saleID {
				ids = append(ids, o.ID)
				var by time.Time
				if o.PayBy != nil {
					by = *o.PayBy
				}
				due = append(due, by)
			}
		}
		if page.Next == "" {
			slices.Reverse(ids)
			slices.Reverse(due)
			return ids, due, nil
		}
		cursor = page.Next
	}
}

func (r *lapseResult) print(w io.Writer) {
	fmt.Fprintf(w, "liveroom-load lapse: room %s, %d buyers on %d units, %d winners never pay\n", r.Room, r.Buyers, r.Quantity, r.Unpaid)
	verdict := "OK: the lapsed units went back on sale and sold once, never more than the quantity"
	if len(r.Problems) > 0 {
		verdict = "FAILED: " + strings.Join(r.Problems, "; ")
	}
	printTable(w, [][2]string{
		{"first storm", fmt.Sprintf("%d orders awaiting payment", r.FirstWinners)},
		{"paid through the admin API", fmt.Sprintf("%d (%.0f/s, 16 at a time)", r.Paid, r.PaidPerSec)},
		{"lapsed", fmt.Sprintf("%d, all seen %.2f s after the last window ended (sweep_interval 1s)", r.Lapsed, r.LapseAfterS)},
		{"second storm", fmt.Sprintf("%d orders of the lapsed units", r.SecondWinners)},
		{"orders by state", strings.Join(r.StatesListed, ", ")},
		{"check", verdict},
	})
}
