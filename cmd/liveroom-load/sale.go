package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"time"
)

// saleConfig is one `sale` run: a flash sale (or several back to back) that
// every buyer hits at the same moment.
type saleConfig struct {
	ws       wsFlags // url, room, buyers (clients), token source, connect rate, source IPs, json
	sku      string
	quantity int
	qty      int
	perUser  int
	price    int64
	startsIn int
	duration int
	checkout bool
	sales    int
	timeout  time.Duration
	progress io.Writer // progress lines; nil = none

	payWithin int // the sale's pay_within_s (lapse); 0: not sent, the server's default
}

func (c *saleConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.ws.baseURL, "url", "http://127.0.0.1:8080", "server base URL (its /metrics is scraped too)")
	fs.StringVar(&c.ws.room, "room", "flash", "room id (created if missing, with --admin-key)")
	fs.IntVar(&c.ws.clients, "buyers", 1000, "buyer WebSockets (each its own user)")
	fs.StringVar(&c.ws.secret, "token-secret", "", "JWT secret: mint tokens locally")
	fs.StringVar(&c.ws.adminKey, "admin-key", "", "admin key: create the room and product, mint tokens through POST /api/v1/tokens")
	fs.IntVar(&c.ws.connectRate, "connect-rate", 1000, "new connections per second")
	fs.IntVar(&c.ws.sourceIPs, "source-ips", 0, "spread buyers over 127.0.0.1..N (loopback servers; hub.max_conns_per_ip)")
	fs.BoolVar(&c.ws.json, "json", false, "print JSON")
	fs.StringVar(&c.sku, "sku", "flash-tee", "product sku (upserted with stock = --quantity before each sale, with --admin-key)")
	fs.IntVar(&c.quantity, "quantity", 100, "units in each sale")
	fs.IntVar(&c.qty, "qty", 1, "units each buyer asks for")
	fs.IntVar(&c.perUser, "per-user-limit", 1, "the sale's per-buyer limit (0 = none)")
	fs.Int64Var(&c.price, "price-cents", 990, "sale price")
	fs.IntVar(&c.startsIn, "starts-in", 0, "seconds until the sale opens (buyers fire when it does)")
	fs.IntVar(&c.duration, "duration", 600, "sale duration in seconds (each sale is stopped when its storm is over)")
	fs.BoolVar(&c.checkout, "checkout", false, "check out after a successful reserve; confirm with GET /api/v1/rooms/{room}/orders")
	fs.IntVar(&c.sales, "sales", 1, "sales to run back to back with the same buyers (a throughput figure)")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "longest wait for any one reply")
}

func (c *saleConfig) check() error {
	if err := c.ws.check(); err != nil {
		// wsFlags names the count --clients; here it is --buyers.
		return errors.New(strings.Replace(err.Error(), "--clients", "--buyers", 1))
	}
	switch {
	case c.sku == "":
		return errors.New("--sku is required")
	case c.quantity < 1:
		return errors.New("--quantity: must be at least 1")
	case c.qty < 1:
		return errors.New("--qty: must be at least 1")
	case c.perUser < 0:
		return errors.New("--per-user-limit: must be 0 or more")
	case c.sales < 1:
		return errors.New("--sales: must be at least 1")
	case c.timeout <= 0:
		return errors.New("--timeout: must be positive")
	}
	return nil
}

// expectUnits is what a correct server accepts in one sale of connected
// buyers: exact (every unit sold) or, when --qty does not divide the
// quantity, a lower bound (a buyer asking for more than is left is sold_out).
func (c *saleConfig) expectUnits(connected int) (want int, exact bool) {
	if c.perUser > 0 && c.qty > c.perUser {
		return 0, true // everyone is over the limit
	}
	demand := connected * c.qty
	if demand <= c.quantity {
		return demand, true
	}
	if c.quantity%c.qty == 0 {
		return c.quantity, true
	}
	return c.quantity - c.qty + 1, false
}

func saleCmd(ctx context.Context, args []string, out io.Writer) error {
	var c saleConfig
	fs := flag.NewFlagSet("sale", flag.ContinueOnError)
	c.register(fs)
	if err := parseChecked(fs, args, c.check); err != nil {
		return err
	}
	c.progress = os.Stderr
	res, err := runSale(ctx, c)
	if err != nil {
		return err
	}
	return report(out, c.ws.json, res, res.print, res.Problems)
}
