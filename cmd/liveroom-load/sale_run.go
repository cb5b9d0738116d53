package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// saleRound is one sale's figures.
type saleRound struct {
	SaleID          string         `json:"sale_id"`
	Requests        int            `json:"requests"`
	Accepted        int            `json:"accepted"`
	AcceptedUnits   int            `json:"accepted_units"`
	SoldOut         int            `json:"sold_out"`
	LimitReached    int            `json:"limit_reached"`
	Other           map[string]int `json:"other_errors"` // code -> count (no_reply, send_failed too)
	WantUnits       int            `json:"want_units"`
	WantExact       bool           `json:"want_exact"`
	StormSeconds    float64        `json:"storm_seconds"` // start barrier to the last cart.add answer
	ReservationsPS  float64        `json:"reservations_per_s"`
	LatencyP50ms    float64        `json:"latency_p50_ms"`
	LatencyP99ms    float64        `json:"latency_p99_ms"`
	LatencyMaxms    float64        `json:"latency_max_ms"`
	Checkouts       map[string]int `json:"checkouts,omitempty"` // confirmed or error code
	CheckoutP50ms   float64        `json:"checkout_p50_ms,omitempty"`
	CheckoutP99ms   float64        `json:"checkout_p99_ms,omitempty"`
	OrdersListed    int            `json:"orders_listed,omitempty"` // GET .../orders, this sale's
	OrderUnitsListd int            `json:"order_units_listed,omitempty"`

	lat []time.Duration
}

// saleResult is the whole run.
type saleResult struct {
	Room             string      `json:"room"`
	SKU              string      `json:"sku"`
	Buyers           int         `json:"buyers"`
	Connected        int         `json:"connected"`
	ConnectFailed    int         `json:"connect_failed"`
	Quantity         int         `json:"quantity"`
	Qty              int         `json:"qty"`
	PerUserLimit     int         `json:"per_user_limit"`
	Checkout         bool        `json:"checkout"`
	Sales            []saleRound `json:"sales"`
	Requests         int         `json:"requests"`
	Accepted         int         `json:"accepted"`
	StormSeconds     float64     `json:"storm_seconds"` // summed over sales
	ReservationsPS   float64     `json:"reservations_per_s"`
	LatencyP50ms     float64     `json:"latency_p50_ms"`
	LatencyP99ms     float64     `json:"latency_p99_ms"`
	LatencyMaxms     float64     `json:"latency_max_ms"`
	OrdersConfirmed  int         `json:"orders_confirmed"`
	ServerCPUSeconds float64     `json:"server_cpu_seconds"` // over the sales (storms, checkouts, stops)
	ServerRSSBefore  float64     `json:"server_rss_before_bytes"`
	ServerRSSConnect float64     `json:"server_rss_connected_bytes"`
	ServerRSSAfter   float64     `json:"server_rss_after_bytes"`
	Problems         []string    `json:"problems"` // failed checks (oversell, undersell, orders)
}

// runSale connects the host and the buyers, runs cfg.sales sales and
// checks every one.
func runSale(ctx context.Context, cfg saleConfig) (*saleResult, error) {
	f := &cfg.ws
	raiseFileLimit(f.clients + 16)
	if f.adminKey != "" {
		if err := cfg.ensureRoom(ctx); err != nil {
			return nil, err
		}
	}
	m, err := newMinter(f)
	if err != nil {
		return nil, err
	}
	res := &saleResult{Room: f.room, SKU: cfg.sku, Buyers: f.clients, Quantity: cfg.quantity, Qty: cfg.qty,
		PerUserLimit: cfg.perUser, Checkout: cfg.checkout, Problems: []string{}}
	before, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return nil, err
	}
	res.ServerRSSBefore = before.RSS

	cr, err := connectCrowd(ctx, &cfg, m, "load")
	if err != nil {
		return nil, err
	}
	defer cr.close()
	if cr.firstErr != nil && cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "first connect error: %v\n", cr.firstErr)
	}
	res.Connected, res.ConnectFailed = len(cr.buyers), cr.failed
	if len(cr.buyers) == 0 {
		return nil, fmt.Errorf("no buyer connected: %w", cr.firstErr)
	}
	connected, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return nil, err
	}
	res.ServerRSSConnect = connected.RSS

	bearer := f.adminKey
	if bearer == "" {
		bearer = cr.hostTok // a host may list its room's orders
	}
	var all []time.Duration
	for k := range cfg.sales {
		r, err := runOneSale(ctx, &cfg, cr, k)
		if err != nil {
			return nil, err
		}
		if cfg.checkout {
			if r.OrdersListed, r.OrderUnitsListd, err = cfg.orderedUnits(ctx, bearer, r.SaleID); err != nil {
				return nil, err
			}
		}
		res.check(&cfg, r)
		all = append(all, r.lat...)
		res.Sales = append(res.Sales, *r)
		res.Requests += r.Requests
		res.Accepted += r.Accepted
		res.StormSeconds += r.StormSeconds
		res.OrdersConfirmed += r.Checkouts["confirmed"]
	}
	after, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return nil, err
	}
	res.ServerCPUSeconds = after.CPUSeconds - connected.CPUSeconds
	res.ServerRSSAfter = after.RSS
	if res.StormSeconds > 0 {
		res.ReservationsPS = float64(res.Requests) / res.StormSeconds
	}
	slices.Sort(all)
	res.LatencyP50ms, res.LatencyP99ms = ms(percentile(all, 50)), ms(percentile(all, 99))
	if len(all) > 0 {
		res.LatencyMaxms = ms(all[len(all)-1])
	}
	return res, nil
}

// runOneSale: fresh stock, sale.start, all buyers at once, sale.stop.
func runOneSale(ctx context.Context, cfg *saleConfig, cr *saleCrowd, k int) (*saleRound, error) {
	if cfg.ws.adminKey != "" {
		if err := cfg.putProduct(ctx); err != nil {
			return nil, err
		}
	}
	host, buyers := cr.host, cr.buyers
	sale, err := host.startSale(ctx, cfg, fmt.Sprintf("start-%d", k), cr.known)
	if err != nil {
		return nil, err
	}
	if wait := time.Until(sale.StartsAt); wait > 0 {
		select {
		case <-time.After(wait + 5*time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var prog saleProgress
	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.progress != nil {
		pwg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					fmt.Fprintf(cfg.progress, "sale %d/%d: %d buyers, %s\n", k+1, cfg.sales, len(buyers), prog.line())
				}
			}
		})
	}
	outs, began := cr.storm(ctx, cfg, sale.ID, everyone(len(buyers)), &prog)
	close(stopProgress)
	pwg.Wait()
	if err := host.stopSale(ctx, cfg, fmt.Sprintf("stop-%d", k), sale.ID); err != nil {
		return nil, err
	}

	r := &saleRound{SaleID: sale.ID, Requests: len(buyers), Other: map[string]int{}}
	r.WantUnits, r.WantExact = cfg.expectUnits(len(buyers))
	var last time.Time
	var coLat []time.Duration
	for _, o := range outs {
		switch o.result {
		case "ok":
			r.Accepted++
			r.AcceptedUnits += o.units
		case "sold_out":
			r.SoldOut++
		case "limit_reached":
			r.LimitReached++
		default:
			r.Other[o.result]++
		}
		if !o.answered.IsZero() {
			r.lat = append(r.lat, o.latency)
			if o.answered.After(last) {
				last = o.answered
			}
		}
		if o.checkout != "" {
			if r.Checkouts == nil {
				r.Checkouts = map[string]int{}
			}
			r.Checkouts[o.checkout]++
			if o.checkout == "confirmed" {
				coLat = append(coLat, o.coLat)
			}
		}
	}
	if !last.IsZero() {
		r.StormSeconds = last.Sub(began).Seconds()
		r.ReservationsPS = float64(len(r.lat)) / r.StormSeconds
	}
	slices.Sort(r.lat)
	r.LatencyP50ms, r.LatencyP99ms = ms(percentile(r.lat, 50)), ms(percentile(r.lat, 99))
	if len(r.lat) > 0 {
		r.LatencyMaxms = ms(r.lat[len(r.lat)-1])
	}
	slices.Sort(coLat)
	r.CheckoutP50ms, r.CheckoutP99ms = ms(percentile(coLat, 50)), ms(percentile(coLat, 99))
	if cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "sale %d/%d done: %s in %.2fs\n", k+1, cfg.sales, prog.line(), r.StormSeconds)
	}
	return r, nil
}

// check records every way the round breaks the stock guarantee.
func (res *saleResult) check(cfg *saleConfig, r *saleRound) {
	bad := func(format string, a ...any) {
		res.Problems = append(res.Problems, fmt.Sprintf("sale %s: ", r.SaleID)+fmt.Sprintf(format, a...))
	}
	if r.AcceptedUnits > cfg.quantity {
		bad("OVERSOLD: %d units accepted of %d", r.AcceptedUnits, cfg.quantity)
	}
	if r.Accepted*cfg.qty != r.AcceptedUnits {
		bad("%d accepted requests carry %d units, want %d × %d", r.Accepted, r.AcceptedUnits, r.Accepted, cfg.qty)
	}
	if r.WantExact && r.AcceptedUnits != r.WantUnits {
		bad("%d units accepted, want exactly %d", r.AcceptedUnits, r.WantUnits)
	}
	if !r.WantExact && r.AcceptedUnits < r.WantUnits {
		bad("%d units accepted, want at least %d", r.AcceptedUnits, r.WantUnits)
	}
	if cfg.checkout {
		if c := r.Checkouts["confirmed"]; c != r.Accepted || r.OrdersListed != c || r.OrderUnitsListd != r.AcceptedUnits {
			bad("%d reserved, %d orders confirmed, %d orders with %d units listed by the API", r.Accepted, c, r.OrdersListed, r.OrderUnitsListd)
		}
	}
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		keys = append(keys, fmt.Sprintf("%s %d", k, v))
		n += v
	}
	sort.Strings(keys)
	return fmt.Sprintf("%d (%s)", n, strings.Join(keys, ", "))
}

func (res *saleResult) print(w io.Writer) {
	fmt.Fprintf(w, "liveroom-load sale: room %s, sku %s, %d buyers × qty %d on %d units (per-user limit %d), %d sale(s)%s\n",
		res.Room, res.SKU, res.Buyers, res.Qty, res.Quantity, res.PerUserLimit, len(res.Sales), map[bool]string{true: ", with checkout"}[res.Checkout])
	rows := [][2]string{{"connected", fmt.Sprintf("%d (%d failed)", res.Connected, res.ConnectFailed)}}
	for i, r := range res.Sales {
		p := ""
		if len(res.Sales) > 1 {
			p = fmt.Sprintf("#%d ", i+1)
		}
		want := fmt.Sprintf("= %d", r.WantUnits)
		if !r.WantExact {
			want = fmt.Sprintf("≥ %d", r.WantUnits)
		}
		rows = append(rows,
			[2]string{p + "sale", r.SaleID},
			[2]string{p + "accepted", fmt.Sprintf("%d requests, %d units (want %s, ≤ %d)", r.Accepted, r.AcceptedUnits, want, res.Quantity)},
			[2]string{p + "sold_out / limit_reached", fmt.Sprintf("%d / %d", r.SoldOut, r.LimitReached)},
			[2]string{p + "other errors", countsText(r.Other)},
			[2]string{p + "storm", fmt.Sprintf("%.3f s, %.0f answers/s", r.StormSeconds, r.ReservationsPS)},
			[2]string{p + "latency p50/p99/max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.LatencyP50ms, r.LatencyP99ms, r.LatencyMaxms)},
		)
		if res.Checkout {
			rows = append(rows,
				[2]string{p + "checkouts", countsText(r.Checkouts)},
				[2]string{p + "checkout p50/p99", fmt.Sprintf("%.1f / %.1f ms", r.CheckoutP50ms, r.CheckoutP99ms)},
				[2]string{p + "orders in the API", fmt.Sprintf("%d orders, %d units", r.OrdersListed, r.OrderUnitsListd)},
			)
		}
	}
	if len(res.Sales) > 1 {
		rows = append(rows,
			[2]string{"all sales", fmt.Sprintf("%d requests, %d accepted, %.0f answers/s over %.2f s of storms", res.Requests, res.Accepted, res.ReservationsPS, res.StormSeconds)},
			[2]string{"all latency p50/p99/max", fmt.Sprintf("%.1f / %.1f / %.1f ms", res.LatencyP50ms, res.LatencyP99ms, res.LatencyMaxms)},
		)
	}
	if res.Checkout {
		rows = append(rows, [2]string{"orders confirmed", fmt.Sprint(res.OrdersConfirmed)})
	}
	rows = append(rows,
		[2]string{"server CPU (sales)", fmt.Sprintf("%.2f s", res.ServerCPUSeconds)},
		[2]string{"server RSS", fmt.Sprintf("%s before, %+.1f MiB connecting, %+.1f MiB over the sales", mib(res.ServerRSSBefore),
			(res.ServerRSSConnect-res.ServerRSSBefore)/(1<<20), (res.ServerRSSAfter-res.ServerRSSConnect)/(1<<20))},
	)
	verdict := "OK: no oversell, every unit accounted for"
	if len(res.Problems) > 0 {
		verdict = "FAILED: " + strings.Join(res.Problems, "; ")
	}
	rows = append(rows, [2]string{"check", verdict})
	printTable(w, rows)
}
