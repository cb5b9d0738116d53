package cart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// gwNode is one node: a hub on loopback with the cart attached and its
// Service running; stop kills it (no more ticks, connections cut).
type gwNode struct {
	*roomtest.Server
	svc  *Service
	stop func()
	dead bool
}

func newGwNode(t *testing.T, store Store, bus room.Bus) *gwNode {
	t.Helper()
	n := &gwNode{}
	hc := room.DefaultHubConfig()
	hc.MaxConnsPerIP = 0
	hc.FrameBurst = 1000
	n.Server = roomtest.New(t, roomtest.Options{Hub: &hc, Bus: bus, Setup: func(h *room.Hub, s *roomtest.Server) error {
		svc, err := NewService(store, fastConfig(), ServiceOptions{Log: quietLog})
		if err != nil {
			return err
		}
		n.svc = svc
		AttachWS(h, svc, quietLog)
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.svc.Run(ctx); close(done) }()
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped, n.dead = true, true
		cancel()
		<-done
		n.HTTP.CloseClientConnections()
	}
	t.Cleanup(n.stop)
	return n
}

// gwClusters are the deployments the giveaway storm runs on: one local
// node, one Redis node, two nodes on one Redis (a shared bus).
var gwClusters = []struct {
	name  string
	nodes func(t *testing.T) []*gwNode
}{
	{"local", func(t *testing.T) []*gwNode {
		return []*gwNode{newGwNode(t, newTestLocalStore(t, fastConfig()), nil)}
	}},
	{"redis", func(t *testing.T) []*gwNode {
		return []*gwNode{newGwNode(t, newTestRedisStore(t, fastConfig()), nil)}
	}},
	{"redis-2-nodes", func(t *testing.T) []*gwNode { return twoRedisNodes(t) }},
}

func twoRedisNodes(t *testing.T) []*gwNode {
	rdb := redisClient(t)
	cfg := fastConfig()
	cfg.RedisPrefix = fmt.Sprintf("t%d:", redisPrefixes.Add(1))
	var nodes []*gwNode
	for range 2 {
		st, err := NewRedisStore(rdb, cfg)
		if err != nil {
			t.Fatal(err)
		}
		bus := room.NewRedisBus(rdb, room.RedisBusConfig{Prefix: cfg.RedisPrefix + "bus:", History: 10000})
		t.Cleanup(func() { bus.Close() })
		nodes = append(nodes, newGwNode(t, st, bus))
	}
	return nodes
}

const gwStormClients = 300

// TestGiveawayWS: hundreds of real WebSocket viewers (spread over the
// nodes) enter one giveaway; each gets one entry, the list holds each once,
// exactly one giveaway.ended goes out, it recomputes independently from the
// published seed and list, and the winners get their 0-price orders.
func TestGiveawayWS(t *testing.T) {
	for _, cl := range gwClusters {
		t.Run(cl.name, func(t *testing.T) {
			nodes := cl.nodes(t)
			runGiveawayStorm(t, nodes, gwStormClients, func() {})
		})
	}
}

// TestGiveawayStartingNodeDies: the node that started the giveaway (and
// whose viewers entered) is gone before entry closes; the other node ends
// it, once, with the prize orders.
func TestGiveawayStartingNodeDies(t *testing.T) {
	nodes := twoRedisNodes(t)
	runGiveawayStorm(t, nodes, 60, func() { nodes[0].stop() })
}

func runGiveawayStorm(t *testing.T, nodes []*gwNode, n int, afterEntries func()) {
	ctx := context.Background()
	store := nodes[0].svc.Store()
	if _, err := store.PutProduct(ctx, "demo", Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 50}); err != nil {
		t.Fatal(err)
	}
	host := nodes[0].Dial(t, "demo", nodes[0].Token(t, "host", room.RoleHost, "demo"))
	defer host.Close()
	// The last node keeps a watcher that sees the end (it survives a kill
	// of the first node).
	last := nodes[len(nodes)-1]
	watch := last.Dial(t, "demo", "")
	defer watch.Close()

	// Everyone connects first, so that the entry window only has to hold
	// the storm itself.
	viewers := make([]*roomtest.Client, n)
	for i := range viewers {
		nd := nodes[i%len(nodes)]
		u := fmt.Sprintf("v%04d", i)
		viewers[i] = nd.Dial(t, "demo", nd.Token(t, u, room.RoleViewer, "demo"))
		defer viewers[i].Close()
	}
	// Refusals first: each an error with a code, nothing started.
	host.Send(t, map[string]any{"type": "giveaway.start", "ref": "bad", "prize": map[string]any{"sku": "tee"}, "entry_s": 3, "winners": 99})
	if ev := host.Next(t, byRef("bad")); ev.Type != "error" || roomtest.Field[string](t, ev, "code") != "bad_request" {
		t.Fatalf("start with 99 winners: got %s, want error bad_request", ev.AppendJSON(nil))
	}
	host.Send(t, map[string]any{"type": "giveaway.start", "ref": "s", "prize": map[string]any{"sku": "tee"}, "entry_s": 5, "winners": 3})
	started := host.Expect(t, "giveaway.started") // a room event: no ref
	if started.Type != "giveaway.started" {
		t.Fatalf("start: got %s", started.AppendJSON(nil))
	}
	id := roomtest.Field[string](t, started, "giveaway_id")
	commitment := roomtest.Field[string](t, started, "commitment")
	if got := roomtest.Field[float64](t, started, "winner_count"); got != 3 {
		t.Fatalf("giveaway.started winner_count %v, want 3", got)
	}
	host.Send(t, map[string]any{"type": "giveaway.enter", "ref": "h", "giveaway_id": id})
	host.ExpectError(t, "not_allowed")

	viewers[0].Send(t, map[string]any{"type": "giveaway.enter", "ref": "x", "giveaway_id": "g_00"})
	viewers[0].ExpectError(t, "not_found")
	for i, c := range viewers {
		c.Send(t, map[string]any{"type": "giveaway.enter", "ref": fmt.Sprintf("e%d", i), "giveaway_id": id})
	}
	entries := make([]string, n)
	for i, c := range viewers {
		ev := c.Next(t, byRef(fmt.Sprintf("e%d", i)))
		if ev.Type != "giveaway.entered" {
			t.Fatalf("viewer %d enter: got %s", i, ev.AppendJSON(nil))
		}
		entries[i] = roomtest.Field[string](t, ev, "entry")
	}
	// A repeat answers the same entry.
	viewers[1].Send(t, map[string]any{"type": "giveaway.enter", "ref": "again", "giveaway_id": id})
	if ev := viewers[1].Next(t, byRef("again")); roomtest.Field[string](t, ev, "entry") != entries[1] {
		t.Fatalf("repeat enter: got %s, want entry %s", ev.AppendJSON(nil), entries[1])
	}
	// A second tab of an entrant, joining while entry is open, is welcomed
	// with the giveaway and their entry.
	nd := nodes[len(nodes)-1]
	tab := nd.Dial(t, "demo", nd.Token(t, fmt.Sprintf("v%04d", 1), room.RoleViewer, "demo"))
	if g := roomtest.Field[map[string]any](t, tab.Welcome, "room")["giveaway"]; g == nil {
		t.Fatalf("welcome during a giveaway has no room.giveaway: %s", tab.Welcome.AppendJSON(nil))
	}
	if got := roomtest.Field[string](t, tab.Welcome, "giveaway_entry"); got != entries[1] {
		t.Fatalf("welcome of an entrant's second tab: giveaway_entry %q, want %s", got, entries[1])
	}
	tab.Close()
	afterEntries()

	endsAt, err := time.Parse(time.RFC3339Nano, roomtest.Field[string](t, started, "ends_at"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(endsAt)) // then the end is one tick away
	ended := watch.Expect(t, "giveaway.ended")
	seed := roomtest.Field[string](t, ended, "seed")
	raw, _ := hex.DecodeString(seed)
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != commitment {
		t.Fatalf("SHA-256(seed %s) = %x, committed %s", seed, sum, commitment)
	}
	if got := int(roomtest.Field[float64](t, ended, "entrants")); got != n {
		t.Fatalf("entrants %d, want %d", got, n)
	}
	gs := last.svc.Giveaways()
	list, err := gs.GiveawayEntries(ctx, "demo", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("entry list has %d, want %d", len(list), n)
	}
	sorted := slices.Clone(list)
	slices.Sort(sorted)
	mine := slices.Clone(entries)
	slices.Sort(mine)
	if !slices.Equal(sorted, mine) {
		t.Fatal("the entry list is not exactly the entries the viewers were given")
	}
	if h := roomtest.Field[string](t, ended, "entrants_hash"); h != verifyListHash(list) {
		t.Fatalf("entrants_hash %s, list hashes to %s", h, verifyListHash(list))
	}
	var won []string
	for _, w := range roomtest.Field[[]any](t, ended, "winners") {
		won = append(won, w.(map[string]any)["entry"].(string))
	}
	if want := verifyDraw(t, seed, id, list, 3); !slices.Equal(won, want) {
		t.Fatalf("published winners %v, independent recomputation %v", won, want)
	}
	// Winners on a live node get giveaway.won with their order.
	for i, c := range viewers {
		if !slices.Contains(won, entries[i]) || nodes[i%len(nodes)].dead {
			continue
		}
		ev := c.Expect(t, "giveaway.won")
		if o := roomtest.Field[map[string]any](t, ev, "order"); o["total_cents"].(float64) != 0 {
			t.Fatalf("prize order %v, want total 0", o)
		}
	}
	page, err := store.Orders(ctx, "demo", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Orders) != 3 {
		t.Fatalf("%d orders in the store, want 3 (one per winner, once)", len(page.Orders))
	}
	if p, _ := store.Product(ctx, "demo", "tee"); p.Stock != 47 {
		t.Fatalf("stock %d after giving 3, want 47", p.Stock)
	}
	// Exactly one giveaway.ended (give every node's tick time to race),
	// and entering is over.
	time.Sleep(10 * fastConfig().StockInterval)
	if extra := watch.Quiet(t, ""); slices.ContainsFunc(extra, func(e room.Event) bool { return e.Type == "giveaway.ended" }) {
		t.Fatal("a second giveaway.ended went out")
	}
	late := last.Dial(t, "demo", last.Token(t, "late", room.RoleViewer, "demo"))
	defer late.Close()
	late.Send(t, map[string]any{"type": "giveaway.enter", "ref": "late", "giveaway_id": id})
	late.ExpectError(t, "giveaway_closed")
}
