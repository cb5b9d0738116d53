package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// giveawayConfig is one `giveaway` run: N signed-in viewers enter one
// giveaway at the same moment; the run then checks the published draw
// against docs/giveaway-draw.md, recomputed here (not with the server's
// code).
type giveawayConfig struct {
	ws      wsFlags // url, room, clients (entrants), token source, connect rate, source IPs, json
	entryS  int
	winners int
	sku     string
	timeout time.Duration
}

func (c *giveawayConfig) register(fs *flag.FlagSet) {
	c.ws.register(fs)
	fs.IntVar(&c.entryS, "entry-s", 30, "the giveaway's entry window (s); every entrant fires at once right after the start")
	fs.IntVar(&c.winners, "winners", 1, "winners to draw")
	fs.StringVar(&c.sku, "sku", "", "give a product (upserted with stock = --winners, needs --admin-key); empty: a text prize")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "longest wait for any one reply")
}

func (c *giveawayConfig) check() error {
	if err := c.ws.check(); err != nil {
		return err
	}
	switch {
	case c.entryS < 1:
		return errors.New("--entry-s: must be at least 1")
	case c.winners < 1:
		return errors.New("--winners: must be at least 1")
	case c.sku != "" && c.ws.adminKey == "":
		return errors.New("--sku needs --admin-key (to stock the product)")
	}
	return nil
}

// giveawayResult is what a run measured and checked.
type giveawayResult struct {
	Room          string         `json:"room"`
	GiveawayID    string         `json:"giveaway_id"`
	Clients       int            `json:"clients"`
	Connected     int            `json:"connected"`
	Entered       int            `json:"entered"`
	Errors        map[string]int `json:"errors"`
	EntriesPS     float64        `json:"entries_per_s"`
	EnterP50ms    float64        `json:"enter_p50_ms"`
	EnterP99ms    float64        `json:"enter_p99_ms"`
	EndAfterMS    float64        `json:"end_after_close_ms"` // ends_at to giveaway.ended at the host
	Entrants      int            `json:"entrants"`
	Winners       []string       `json:"winners"`
	VerifyMS      float64        `json:"verify_ms"` // recomputing the draw here
	Problems      []string       `json:"problems"`
	RecordEntries int            `json:"record_entries"`
}

func giveawayCmd(ctx context.Context, args []string, out io.Writer) error {
	var c giveawayConfig
	fs := flag.NewFlagSet("giveaway", flag.ContinueOnError)
	c.register(fs)
	if err := parseChecked(fs, args, c.check); err != nil {
		return err
	}
	res, err := runGiveaway(ctx, c)
	if err != nil {
		return err
	}
	return report(out, c.ws.json, res, res.print, res.Problems)
}

// print writes the run's figures as text.
func (res *giveawayResult) print(out io.Writer) {
	fmt.Fprintf(out, "giveaway %s: %d/%d connected, %d entered (errors %v)\n", res.GiveawayID, res.Connected, res.Clients, res.Entered, res.Errors)
	fmt.Fprintf(out, "entries/s %.0f   enter p50 %.1f ms  p99 %.1f ms   ended %.0f ms after close   verify %.1f ms\n",
		res.EntriesPS, res.EnterP50ms, res.EnterP99ms, res.EndAfterMS, res.VerifyMS)
	fmt.Fprintf(out, "entrants %d, winners %v\n", res.Entrants, res.Winners)
}

// gwConn is one WebSocket: its reader passes every frame on; only the
// owner writes.
type gwConn struct {
	ws     *websocket.Conn
	frames chan gwArrival
	done   chan struct{}
	err    error
}

type gwArrival struct {
	at time.Time
	f  gwFrame
}

type gwFrame struct {
	Type         string    `json:"type"`
	Ref          string    `json:"ref"`
	Code         string    `json:"code"`
	Message      string    `json:"message"`
	GiveawayID   string    `json:"giveaway_id"`
	Entry        string    `json:"entry"`
	EndsAt       time.Time `json:"ends_at"`
	Commitment   string    `json:"commitment"`
	Seed         string    `json:"seed"`
	EntrantsHash string    `json:"entrants_hash"`
	Entrants     int       `json:"entrants"`
	// Winners is giveaway.ended's list (giveaway.started has winner_count).
	Winners json.RawMessage `json:"winners"`
}

// winnerEntries reads giveaway.ended's winners.
func (f *gwFrame) winnerEntries() ([]string, error) {
	var ws []struct {
		Entry string `json:"entry"`
	}
	if err := json.Unmarshal(f.Winners, &ws); err != nil {
		return nil, fmt.Errorf("giveaway.ended winners: %w", err)
	}
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Entry
	}
	return out, nil
}

func dialGiveaway(ctx context.Context, c *wsFlags, tok string) (*gwConn, error) {
	ws, _, err := c.dialer().DialContext(ctx, c.wsURL(tok), nil)
	if err != nil {
		return nil, err
	}
	g := &gwConn{ws: ws, frames: make(chan gwArrival, 64), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				g.err = err
				return
			}
			at := time.Now()
			var f gwFrame
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			switch f.Type {
			case "welcome", "giveaway.started", "giveaway.ended":
			default:
				if f.Ref == "" {
					continue // room chatter nobody waits for
				}
			}
			select {
			case g.frames <- gwArrival{at, f}:
			default: // nobody waits for it
			}
		}
	}()
	if _, err := g.await(ctx, 10*time.Second, func(f *gwFrame) bool { return f.Type == "welcome" }); err != nil {
		ws.Close()
		return nil, err
	}
	return g, nil
}

func (g *gwConn) await(ctx context.Context, d time.Duration, match func(*gwFrame) bool) (gwArrival, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case a := <-g.frames:
			if match(&a.f) {
				return a, nil
			}
		case <-g.done:
			return gwArrival{}, fmt.Errorf("connection closed: %w", g.err)
		case <-t.C:
			return gwArrival{}, errNoReply
		case <-ctx.Done():
			return gwArrival{}, ctx.Err()
		}
	}
}

func (g *gwConn) send(v map[string]any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = g.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return g.ws.WriteMessage(websocket.TextMessage, b)
}

func runGiveaway(ctx context.Context, cfg giveawayConfig) (*giveawayResult, error) {
	res := &giveawayResult{Room: cfg.ws.room, Clients: cfg.ws.clients, Errors: map[string]int{}}
	raiseFileLimit(cfg.ws.clients + 64)
	mint, err := newMinter(&cfg.ws)
	if err != nil {
		return nil, err
	}
	roomURL := cfg.ws.baseURL + "/api/v1/rooms/" + url.PathEscape(cfg.ws.room)
	if cfg.ws.adminKey != "" {
		if status, err := apiCall(ctx, http.MethodGet, roomURL, cfg.ws.adminKey, nil, nil); err != nil {
			if status != http.StatusNotFound {
				return nil, err
			}
			if _, err := apiCall(ctx, http.MethodPost, cfg.ws.baseURL+"/api/v1/rooms", cfg.ws.adminKey,
				map[string]any{"id": cfg.ws.room, "title": "liveroom-load giveaway"}, nil); err != nil {
				return nil, err
			}
		}
	}
	prize := map[string]any{"text": "liveroom-load prize"}
	if cfg.sku != "" {
		if _, err := apiCall(ctx, http.MethodPut, roomURL+"/products/"+url.PathEscape(cfg.sku), cfg.ws.adminKey,
			map[string]any{"title": "Giveaway prize", "price_cents": 1000, "currency": "USD", "stock": cfg.winners}, nil); err != nil {
			return nil, err
		}
		prize = map[string]any{"sku": cfg.sku}
	}
	htok, err := mint.token(ctx, "load-gw-host", room.RoleHost)
	if err != nil {
		return nil, err
	}
	host, err := dialGiveaway(ctx, &cfg.ws, htok)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	defer host.ws.Close()

	conns := make([]*gwConn, cfg.ws.clients)
	failed, firstErr := cfg.ws.connectAll(ctx, cfg.ws.clients, func(ctx context.Context, i int) error {
		tok, err := mint.token(ctx, fmt.Sprintf("load-gw-%d", i), room.RoleViewer)
		if err != nil {
			return err
		}
		c, err := dialGiveaway(ctx, &cfg.ws, tok)
		conns[i] = c
		return err
	})
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.ws.Close()
			}
		}
	}()
	res.Connected = cfg.ws.clients - failed
	if failed > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d clients failed to connect: %v", failed, firstErr))
	}

	if err := host.send(map[string]any{"type": "giveaway.start", "ref": "start", "prize": prize, "entry_s": cfg.entryS, "winners": cfg.winners}); err != nil {
		return nil, err
	}
	a, err := host.await(ctx, cfg.timeout, func(f *gwFrame) bool {
		return f.Type == "giveaway.started" || (f.Type == "error" && f.Ref == "start")
	})
	if err != nil {
		return nil, fmt.Errorf("giveaway.start: %w", err)
	}
	if a.f.Type == "error" {
		return nil, fmt.Errorf("giveaway.start: %s: %s", a.f.Code, a.f.Message)
	}
	started := a.f
	res.GiveawayID = started.GiveawayID
	fmt.Fprintf(os.Stderr, "giveaway %s started, entry until %s\n", started.GiveawayID, started.EndsAt.Format(time.TimeOnly))

	// The storm: every entrant at once.
	entries := make([]string, len(conns))
	lat := make([]time.Duration, 0, len(conns))
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	var first, last time.Time
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Go(func() {
			<-gate
			sent := time.Now()
			code := ""
			if err := c.send(map[string]any{"type": "giveaway.enter", "ref": "e", "giveaway_id": started.GiveawayID}); err != nil {
				code = "send_failed"
			} else if a, err := c.await(ctx, cfg.timeout, func(f *gwFrame) bool { return f.Ref == "e" }); err != nil {
				code = "no_reply"
			} else if a.f.Type != "giveaway.entered" {
				code = a.f.Code
			} else {
				mu.Lock()
				entries[i] = a.f.Entry
				lat = append(lat, a.at.Sub(sent))
				if first.IsZero() || sent.Before(first) {
					first = sent
				}
				if a.at.After(last) {
					last = a.at
				}
				mu.Unlock()
			}
			if code != "" {
				mu.Lock()
				res.Errors[code]++
				mu.Unlock()
			}
		})
	}
	close(gate)
	wg.Wait()
	res.Entered = len(lat)
	if res.Entered > 0 {
		res.EntriesPS = float64(res.Entered) / last.Sub(first).Seconds()
		slices.Sort(lat)
		res.EnterP50ms = ms(lat[len(lat)/2])
		res.EnterP99ms = ms(lat[len(lat)*99/100])
	}
	if !last.IsZero() && last.After(started.EndsAt) {
		res.Problems = append(res.Problems, "the storm outlasted the entry window: raise --entry-s")
	}

	ended, err := host.await(ctx, time.Until(started.EndsAt)+cfg.timeout, func(f *gwFrame) bool {
		return f.Type == "giveaway.ended" && f.GiveawayID == started.GiveawayID
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for giveaway.ended: %w", err)
	}
	res.EndAfterMS = ms(ended.at.Sub(started.EndsAt))
	res.Entrants = ended.f.Entrants
	if res.Winners, err = ended.f.winnerEntries(); err != nil {
		return nil, err
	}
	res.check(ctx, cfg, started, ended.f, entries, roomURL)
	return res, nil
}

// check recomputes the published draw from the public record.
func (res *giveawayResult) check(ctx context.Context, cfg giveawayConfig, started, ended gwFrame, entries []string, roomURL string) {
	var rec struct {
		Commitment   string   `json:"commitment"`
		Seed         string   `json:"seed"`
		Entrants     int      `json:"entrants"`
		EntrantsHash string   `json:"entrants_hash"`
		Entries      []string `json:"entries"`
	}
	bearer := cfg.ws.adminKey
	if _, err := apiCall(ctx, http.MethodGet, roomURL+"/giveaways/"+url.PathEscape(started.GiveawayID), bearer, nil, &rec); err != nil {
		res.Problems = append(res.Problems, "reading the record: "+err.Error())
		return
	}
	res.RecordEntries = len(rec.Entries)
	problem := func(f string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(f, a...)) }
	seed, err := hex.DecodeString(ended.Seed)
	sum := sha256.Sum256(seed)
	if err != nil || hex.EncodeToString(sum[:]) != started.Commitment || rec.Commitment != started.Commitment || rec.Seed != ended.Seed {
		problem("the seed does not open the commitment")
	}
	listed := map[string]int{}
	for _, e := range rec.Entries {
		listed[e]++
	}
	mine := 0
	for _, e := range entries {
		if e == "" {
			continue
		}
		mine++
		if listed[e] != 1 {
			problem("entry %s is listed %d times, want once", e, listed[e])
			break
		}
	}
	if len(rec.Entries) != mine || len(listed) != len(rec.Entries) || ended.Entrants != mine {
		problem("the list has %d entries (%d distinct), the event says %d, %d were answered", len(rec.Entries), len(listed), ended.Entrants, mine)
	}
	h := sha256.New()
	for _, e := range rec.Entries {
		io.WriteString(h, e+"\n")
	}
	if hex.EncodeToString(h.Sum(nil)) != ended.EntrantsHash {
		problem("entrants_hash does not match the list")
	}
	t0 := time.Now()
	want := recomputeDraw(seed, started.GiveawayID, ended.EntrantsHash, rec.Entries, cfg.winners)
	res.VerifyMS = ms(time.Since(t0))
	if !slices.Equal(want, res.Winners) {
		problem("published winners %v, recomputed %v", res.Winners, want)
	}
}

// recomputeDraw is docs/giveaway-draw.md, written from the text.
func recomputeDraw(seed []byte, id, listHash string, entries []string, winners int) []string {
	k := hmac.New(sha256.New, seed)
	io.WriteString(k, "liveroom-giveaway-v1\n"+id+"\n"+listHash)
	key := k.Sum(nil)
	var words [][]byte
	var ctr uint64
	next := func() *big.Int {
		if len(words) == 0 {
			m := hmac.New(sha256.New, key)
			m.Write(big.NewInt(0).SetUint64(ctr).FillBytes(make([]byte, 8)))
			ctr++
			b := m.Sum(nil)
			words = [][]byte{b[0:8], b[8:16], b[16:24], b[24:32]}
		}
		w := words[0]
		words = words[1:]
		return new(big.Int).SetBytes(w)
	}
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	a := make([]int, len(entries))
	for i := range a {
		a[i] = i
	}
	var out []string
	for j := 0; j < winners && j < len(entries); j++ {
		m := big.NewInt(int64(len(entries) - j))
		limit := new(big.Int).Mod(two64, m)
		r := next()
		for r.Cmp(limit) < 0 {
			r = next()
		}
		x := j + int(new(big.Int).Mod(r, m).Int64())
		a[j], a[x] = a[x], a[j]
		out = append(out, entries[a[j]])
	}
	return out
}
