package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// idleResult is what the idle workload reports.
type idleResult struct {
	Clients          int     `json:"clients"`
	Connected        int     `json:"connected"`
	Failed           int     `json:"failed"`
	RSSBeforeMB      float64 `json:"server_rss_before_mb"`
	RSSAfterMB       float64 `json:"server_rss_after_mb"`
	RSSPerConnKiB    float64 `json:"server_rss_per_conn_kib"`
	HeapStackPerConn float64 `json:"server_heap_plus_stack_per_conn_kib"`
	GoroutinesPer    float64 `json:"server_goroutines_per_conn"`
	AfterGC          bool    `json:"after_gc"` // the server offered POST /debug/gc (the hub-server harness)
}

// idleCmd connects N clients that only answer pings and reports the
// server's memory per idle connection (RSS and Go heap+stack deltas).
func idleCmd(ctx context.Context, args []string, out io.Writer) error {
	var f wsFlags
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	f.register(fs)
	settle := fs.Duration("settle", 5*time.Second, "wait after connecting before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	guests := f.secret == "" && f.adminKey == ""
	if guests {
		f.secret = "unused-secret-0123456789" // idle clients may be guests
	}
	if err := f.check(); err != nil {
		return err
	}
	raiseFileLimit(f.clients)
	tok := ""
	if !guests {
		m, err := newMinter(&f)
		if err != nil {
			return err
		}
		if tok, err = m.token(ctx, "load-idle", room.RoleViewer); err != nil {
			return err
		}
	}
	gced := forceGC(ctx, f.baseURL)
	before, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	d := f.dialer()
	conns := make([]*websocket.Conn, f.clients)
	failed, firstErr := f.connectAll(ctx, f.clients, func(ctx context.Context, i int) error {
		ws, _, err := d.DialContext(ctx, f.wsURL(tok), nil)
		if err != nil {
			return err
		}
		conns[i] = ws
		go func() { // answer pings, drop everything else
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
		return nil
	})
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "first connect error: %v\n", firstErr)
	}
	sleepCtx(ctx, *settle)
	forceGC(ctx, f.baseURL)
	after, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	connected := f.clients - failed
	for _, ws := range conns {
		if ws != nil {
			ws.Close()
		}
	}
	res := idleResult{Clients: f.clients, Connected: connected, Failed: failed, AfterGC: gced,
		RSSBeforeMB: before.RSS / (1 << 20), RSSAfterMB: after.RSS / (1 << 20)}
	if connected > 0 {
		n := float64(connected)
		res.RSSPerConnKiB = (after.RSS - before.RSS) / n / 1024
		res.HeapStackPerConn = (after.HeapInuse + after.StackInuse - before.HeapInuse - before.StackInuse) / n / 1024
		res.GoroutinesPer = (after.Goroutines - before.Goroutines) / n
	}
	if f.json {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "liveroom-load idle: room %s, %d clients\n", f.room, f.clients)
	printTable(out, [][2]string{
		{"connected", fmt.Sprintf("%d (%d failed)", connected, failed)},
		{"server RSS", fmt.Sprintf("%s → %s", mib(before.RSS), mib(after.RSS))},
		{"per idle connection", fmt.Sprintf("%.1f KiB RSS; %.1f KiB Go heap+stack (target ≤ 12 KiB)", res.RSSPerConnKiB, res.HeapStackPerConn)},
		{"goroutines per connection", fmt.Sprintf("%.2f", res.GoroutinesPer)},
		{"measured after a GC", fmt.Sprint(gced)},
	})
	return nil
}

// forceGC asks the hub-server harness to collect garbage (and return it to
// the OS) so memory readings show live data; a real server has no such
// route and the readings then include garbage.
func forceGC(ctx context.Context, base string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/debug/gc", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
