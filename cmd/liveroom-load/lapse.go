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
)

// lapseConfig is one `lapse` run (docs/orders.md): a flash sale whose
// orders await payment; the merchant pays all but --unpaid of them through
// the admin API; the unpaid ones lapse after --pay-within and their units
// go back to the running sale, where the buyers who lost the first storm
// take them in a second one.
type lapseConfig struct {
	sale   saleConfig
	unpaid int
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
	fs.IntVar(&c.sale.payWithin, "pay-within", 5, "the sale's payment window in seconds (pay_within_s)")
	if err := parseChecked(fs, args, c.check); err != nil {
		return err
	}
	c.sale.progress = os.Stderr
	res, err := runLapse(ctx, c)
	if err != nil {
		return err
	}
	return report(out, c.sale.ws.json, res, res.print, res.Problems)
}

func (c *lapseConfig) check() error {
	// One unit a buyer, checked out, as soon as the sale opens.
	c.sale.checkout, c.sale.qty, c.sale.perUser, c.sale.startsIn = true, 1, 1, 0
	if err := c.sale.check(); err != nil {
		return err
	}
	switch {
	case c.sale.ws.adminKey == "":
		return errors.New("--admin-key is required (the merchant reports payments through the admin API)")
	case c.unpaid < 1 || c.unpaid > c.sale.quantity:
		return errors.New("--unpaid: must be 1..--quantity")
	case c.sale.payWithin < 1 || c.sale.payWithin > 3600:
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
	cr, err := connectCrowd(ctx, sc, m, "lapse")
	if err != nil {
		return nil, err
	}
	defer cr.close()
	if len(cr.buyers) < sc.quantity+cfg.unpaid {
		return nil, fmt.Errorf("only %d buyers connected: %v", len(cr.buyers), cr.firstErr)
	}

	// The sale, with its own payment window.
	sale, err := cr.host.startSale(ctx, sc, "start-lapse", cr.known)
	if err != nil {
		return nil, err
	}
	saleID := sale.ID
	defer func() { _ = cr.host.stopSale(context.WithoutCancel(ctx), sc, "stop-lapse", saleID) }()

	// storm returns the buyers in who that reserved and checked out.
	storm := func(who []int) []int {
		var prog saleProgress
		outs, _ := cr.storm(ctx, sc, saleID, who, &prog)
		var won []int
		for k, o := range outs {
			if o.result == "ok" && o.checkout == "confirmed" {
				won = append(won, who[k])
			}
		}
		return won
	}
	won := storm(everyone(len(cr.buyers)))
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
	for i := range cr.buyers {
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
