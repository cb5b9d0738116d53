package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"liveroom/room"
)

// saleCrowd is what the sale workloads (sale, lapse) run on: a host, which
// starts and stops the sales, and the buyers that connected.
type saleCrowd struct {
	host     *saleConn
	hostTok  string
	known    map[string]bool // sale ids the host's welcome named: not ours
	buyers   []*saleConn     // the connected ones
	failed   int             // buyers that did not connect
	firstErr error           // why the first of them did not
}

// connectCrowd connects the host, stops a sale of the sku an earlier run
// left open (it would refuse ours), and connects cfg.ws.clients buyers.
// Users are fresh each run (prefix, a random tag and a number), so no carts
// or limits are left from an earlier one. Buyers that fail to connect are
// counted, not fatal: the caller decides how many it needs.
func connectCrowd(ctx context.Context, cfg *saleConfig, m *minter, prefix string) (*saleCrowd, error) {
	f := &cfg.ws
	tag := room.RandomID(4)
	hostTok, err := m.token(ctx, prefix+"-host-"+tag, room.RoleHost)
	if err != nil {
		return nil, err
	}
	d := f.dialer()
	hws, _, err := d.DialContext(ctx, f.wsURL(hostTok), nil)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	cr := &saleCrowd{host: newSaleConn(hws, true), hostTok: hostTok, known: map[string]bool{}}
	w, err := cr.host.waitWelcome(ctx, cfg.timeout)
	if err != nil {
		cr.host.close()
		return nil, fmt.Errorf("host: %w", err)
	}
	if w.Room != nil && w.Room.Sale != nil {
		cr.known[w.Room.Sale.ID] = true
		if s := w.Room.Sale; s.SKU == cfg.sku && s.State != "ended" {
			if err := cr.host.stopSale(ctx, cfg, "stop-old", s.ID); err != nil {
				cr.host.close()
				return nil, err
			}
		}
	}

	buyers := make([]*saleConn, f.clients)
	cr.failed, cr.firstErr = f.connectAll(ctx, f.clients, func(ctx context.Context, i int) error {
		tok, err := m.token(ctx, fmt.Sprintf("%s-buyer-%s-%d", prefix, tag, i), room.RoleViewer)
		if err != nil {
			return err
		}
		ws, _, err := d.DialContext(ctx, f.wsURL(tok), nil)
		if err != nil {
			return err
		}
		c := newSaleConn(ws, false)
		if _, err := c.waitWelcome(ctx, cfg.timeout); err != nil {
			c.close()
			return err
		}
		buyers[i] = c
		return nil
	})
	cr.buyers = slices.DeleteFunc(buyers, func(c *saleConn) bool { return c == nil })
	return cr, nil
}

// close closes the buyers, all at once, then the host.
func (cr *saleCrowd) close() {
	var wg sync.WaitGroup
	for _, c := range cr.buyers {
		wg.Go(c.close)
	}
	wg.Wait()
	cr.host.close()
}

// storm has the buyers numbered in who (indexes into cr.buyers; the number
// makes a buyer's idempotency key) buy in sale saleID at the same moment.
// It returns their outcomes in who's order and when they were let go.
func (cr *saleCrowd) storm(ctx context.Context, cfg *saleConfig, saleID string, who []int, prog *saleProgress) ([]buyerOutcome, time.Time) {
	outs := make([]buyerOutcome, len(who))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k, i := range who {
		wg.Go(func() { outs[k] = cr.buyers[i].buy(ctx, cfg, saleID, i, start, prog) })
	}
	time.Sleep(20 * time.Millisecond) // let every buyer goroutine park on the barrier
	began := time.Now()
	close(start)
	wg.Wait()
	return outs, began
}

// everyone is the numbers of all n buyers, for storm.
func everyone(n int) []int {
	who := make([]int, n)
	for i := range who {
		who[i] = i
	}
	return who
}
