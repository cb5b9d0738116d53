package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"time"
)

// auctionConfig is one `auction` run: one auction, thousands of bidders
// (spread over one or more nodes) bidding at random, everyone bidding in the
// last second of the original end, some of them through proxy maximums.
type auctionConfig struct {
	ws        wsFlags  // url (the host's node, and the admin API), room, clients = bidders, tokens
	bidURLs   []string // nodes the bidders connect to, round robin (default: url)
	sku       string
	start     int64
	duration  int
	extend    int
	proxies   float64 // share of bidders that also set a maximum, at a random moment
	bids      int     // random bids per bidder before the flood
	flood     time.Duration
	timeout   time.Duration
	midway    func() // called halfway to the original end (tests kill a node)
	ordersURL string // node to list orders on (default --url)
}

func (c *auctionConfig) register(fs *flag.FlagSet, bidURLs *string) {
	fs.StringVar(&c.ws.baseURL, "url", "http://127.0.0.1:8080", "the host's node: admin API, auction.start")
	fs.StringVar(bidURLs, "bid-urls", "", "comma-separated nodes the bidders use, round robin (default --url)")
	fs.StringVar(&c.ws.room, "room", "auction", "room id (created if missing)")
	fs.IntVar(&c.ws.clients, "bidders", 2000, "bidder WebSockets (each its own user)")
	fs.StringVar(&c.ws.secret, "token-secret", "", "JWT secret: mint tokens locally")
	fs.StringVar(&c.ws.adminKey, "admin-key", "", "admin key (required: creates the room and product, lists orders)")
	fs.IntVar(&c.ws.connectRate, "connect-rate", 1000, "new connections per second")
	fs.IntVar(&c.ws.sourceIPs, "source-ips", 0, "spread bidders over 127.0.0.1..N")
	fs.BoolVar(&c.ws.json, "json", false, "print JSON")
	fs.StringVar(&c.sku, "sku", "auction-lamp", "product sku (upserted with stock 1)")
	fs.Int64Var(&c.start, "start-cents", 1000, "starting price")
	fs.IntVar(&c.duration, "duration", 10, "auction duration in seconds")
	fs.IntVar(&c.extend, "extend", 2, "soft-close extension in seconds (0 = sudden death)")
	fs.Float64Var(&c.proxies, "proxies", 0.2, "share of bidders that also set a proxy maximum, at a random moment")
	fs.IntVar(&c.bids, "bids", 1, "random bids per bidder before the last-second flood")
	fs.DurationVar(&c.flood, "flood", time.Second, "the flood window before the original end: every bidder bids once in it")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "longest wait for any one reply")
}

func (c *auctionConfig) check() error {
	if err := c.ws.check(); err != nil {
		return errors.New(strings.Replace(err.Error(), "--clients", "--bidders", 1))
	}
	switch {
	case c.ws.adminKey == "":
		return errors.New("--admin-key is required")
	case c.duration < 2 || c.flood <= 0 || c.flood >= time.Duration(c.duration)*time.Second:
		return errors.New("--duration must be at least 2 s and longer than --flood")
	case c.extend < 0 || c.proxies < 0 || c.proxies > 1 || c.bids < 0:
		return errors.New("--extend, --proxies (0..1) and --bids must not be negative")
	}
	if len(c.bidURLs) == 0 {
		c.bidURLs = []string{c.ws.baseURL}
	}
	return nil
}

func auctionCmd(ctx context.Context, args []string, out io.Writer) error {
	var c auctionConfig
	var bidURLs string
	fs := flag.NewFlagSet("auction", flag.ContinueOnError)
	c.register(fs, &bidURLs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range strings.Split(bidURLs, ",") {
		if u = strings.TrimSuffix(strings.TrimSpace(u), "/"); u != "" {
			c.bidURLs = append(c.bidURLs, u)
		}
	}
	if err := c.check(); err != nil {
		return err
	}
	res, err := runAuction(ctx, c)
	if err != nil {
		return err
	}
	return report(out, c.ws.json, res, res.print, res.Problems)
}
