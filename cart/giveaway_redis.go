package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisGiveaways is the cluster GiveawayStore, in the same Redis (and under
// the same room hash tags) as a RedisStore, so that a prize's stock hold and
// its orders are in the room's scripts. Redis TIME is the one clock: entry
// closes at the same instant for every node, and whichever node's EndDue
// gets there first ends the giveaway, even when the node that started it
// is gone.
type RedisGiveaways struct {
	cart *RedisStore
	rdb  redis.UniversalClient
	opt  GiveawayOptions
}

var _ GiveawayStore = (*RedisGiveaways)(nil)

// giveawayKeep is how long an ended giveaway stays readable (verify page).
const giveawayKeep = 7 * 24 * time.Hour

// maxDueScan bounds the giveaways one EndDue looks at (the rest wait for
// the next sweep).
const maxDueScan = 1000

// dueSlack is how far past its own clock a node looks for due giveaways:
// the tolerated clock skew between a node and Redis.
const dueSlack = 5 * time.Second

// NewRedisGiveaways keeps giveaways next to cs, in its Redis.
func NewRedisGiveaways(cs *RedisStore, opt GiveawayOptions) *RedisGiveaways {
	opt.setDefaults()
	return &RedisGiveaways{cart: cs, rdb: cs.rdb, opt: opt}
}

// nowArg is the clock argument of a script: 0 = Redis TIME.
func (s *RedisGiveaways) nowArg() int64 {
	if s.opt.Now == nil {
		return 0
	}
	return toMS(s.opt.Now())
}

func (s *RedisGiveaways) dueIndex() string { return s.cart.gwDueIndex() }

// gwDueIndex lists running giveaways ("room\nid") by their end; outside
// any room's slot.
func (s *RedisStore) gwDueIndex() string { return s.cfg.RedisPrefix + "giveaway:due" }

// forgetGiveaways drops a retired scope's running giveaways from the due
// index (their keys, chatters included, carry the scope's hash tag and go
// with room.ForgetRedisScope).
func (s *RedisStore) forgetGiveaways(ctx context.Context, scope string) error {
	// validRoom let no glob character through to MATCH.
	iter := s.rdb.ZScan(ctx, s.gwDueIndex(), 0, scope+"\n*", 500).Iterator()
	var members []any
	for i := 0; iter.Next(ctx); i++ {
		if i%2 == 0 { // member, score, member, score...
			members = append(members, iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("cart: forget %s giveaways: %w", scope, err)
	}
	if len(members) > 0 {
		if err := s.rdb.ZRem(ctx, s.gwDueIndex(), members...).Err(); err != nil {
			return fmt.Errorf("cart: forget %s giveaways: %w", scope, err)
		}
	}
	return nil
}

func (s *RedisGiveaways) StartGiveaway(ctx context.Context, room string, p GiveawayParams) (Giveaway, error) {
	if err := validRoom(room); err != nil {
		return Giveaway{}, err
	}
	if err := p.normalize(); err != nil {
		return Giveaway{}, err
	}
	seed, commit := newSeed()
	g := Giveaway{ID: newID("g"), Prize: p.Prize, Rule: p.Rule, Winners: p.Winners, Commitment: commit, State: GiveawayOpen, Host: p.Host}
	// Listed as due first (from its start on; the close script decides by
	// Redis' clock), so that no node can miss it; a refused start is
	// dropped from the list by the next EndDue.
	if err := s.rdb.ZAdd(ctx, s.dueIndex(), redis.Z{Score: 0, Member: room + "\n" + g.ID}).Err(); err != nil {
		return Giveaway{}, fmt.Errorf("cart: redis: %w", err)
	}
	v, err := s.cart.run(ctx, luaGwStart, room, "gw:"+g.ID, g.ID, p.Prize.SKU, p.Prize.Text, string(p.Rule), p.Winners,
		commit, seed, p.Host, p.EntryS*1000, s.nowArg())
	if err != nil {
		return Giveaway{}, err
	}
	a := v.([]any)
	started, _ := a[0].(int64)
	ends, _ := a[1].(int64)
	g.StartedAt, g.EndsAt = fromMS(started), fromMS(ends)
	// Now listed by its end, so EndDue need not look at it before then (if
	// this write fails it stays listed at 0: looked at every sweep).
	_ = s.rdb.ZAddXX(ctx, s.dueIndex(), redis.Z{Score: float64(ends), Member: room + "\n" + g.ID}).Err()
	return g, nil
}

func (s *RedisGiveaways) EnterGiveaway(ctx context.Context, room, id string, who Entrant) (EnterResult, error) {
	if err := validUser(who.User); err != nil {
		return EnterResult{}, err
	}
	if !idPattern.MatchString(id) {
		return EnterResult{}, &Error{Code: CodeNotFound, Field: "giveaway_id", Message: fmt.Sprintf("no giveaway %q", id)}
	}
	name, err := json.Marshal(entrantRec{User: who.User, Name: who.Name})
	if err != nil {
		return EnterResult{}, err
	}
	for range 4 {
		v, err := s.cart.run(ctx, luaGwEnter, room, "gw:"+id, id, who.User, newEntryID(), string(name),
			s.opt.MaxEntrants, s.nowArg(), s.cart.cfg.KeyRetention.Milliseconds())
		if err != nil {
			return EnterResult{}, err
		}
		a := v.([]any)
		n, _ := a[2].(int64)
		switch str(a[0]) {
		case "ok":
			return EnterResult{Entry: str(a[1]), Entrants: int(n)}, nil
		case "dup":
			return EnterResult{Entry: str(a[1]), Replayed: true, Entrants: int(n)}, nil
		}
	}
	return EnterResult{}, errf(CodeUnavailable, "could not pick an entry id; try again")
}

type entrantRec struct {
	User string `json:"u"`
	Name string `json:"n"`
}

// winnerRec is a winner as stored (with the private user and order).
type winnerRec struct {
	Entry string `json:"entry"`
	Name  string `json:"name"`
	User  string `json:"user"`
	Order string `json:"order,omitempty"`
}

func (s *RedisGiveaways) Giveaway(ctx context.Context, room, id string) (Giveaway, error) {
	g, _, err := s.read(ctx, room, id)
	return g, err
}

// read returns the giveaway (seed hidden unless ended) and its seed.
func (s *RedisGiveaways) read(ctx context.Context, room, id string) (Giveaway, string, error) {
	if !idPattern.MatchString(id) {
		return Giveaway{}, "", &Error{Code: CodeNotFound, Field: "giveaway_id", Message: fmt.Sprintf("no giveaway %q", id)}
	}
	h, err := s.rdb.HGetAll(ctx, s.cart.prefix(room)+"gw:"+id).Result()
	if err != nil {
		return Giveaway{}, "", fmt.Errorf("cart: redis: %w", err)
	}
	if h["id"] == "" {
		return Giveaway{}, "", &Error{Code: CodeNotFound, Field: "giveaway_id", Message: fmt.Sprintf("no giveaway %q", id)}
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	g := Giveaway{ID: id, Prize: Prize{SKU: h["sku"], Text: h["text"]}, Rule: GiveawayRule(h["rule"]),
		Winners: int(num("winners")), Commitment: h["commit"], StartedAt: fromMS(num("started")), EndsAt: fromMS(num("ends")),
		State: GiveawayState(h["state"]), Entrants: int(num("n")), EntrantsHash: h["hash"], Host: h["host"]}
	if g.State == GiveawayEnded {
		g.Seed = h["seed"]
		var ws []winnerRec
		if err := json.Unmarshal([]byte(h["result"]), &ws); err != nil {
			return Giveaway{}, "", fmt.Errorf("cart: giveaway %s result: %w", id, err)
		}
		g.Result = make([]Winner, len(ws))
		for i, w := range ws {
			g.Result[i] = Winner{Entry: w.Entry, Name: w.Name, User: w.User, OrderID: w.Order}
		}
	}
	return g, h["seed"], nil
}

func (s *RedisGiveaways) GiveawayEntries(ctx context.Context, room, id string) ([]string, error) {
	g, err := s.Giveaway(ctx, room, id)
	if err != nil || g.State == GiveawayOpen {
		return nil, err
	}
	list, err := s.rdb.LRange(ctx, s.cart.prefix(room)+"gw:"+id+":l", 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	return list, nil
}

func (s *RedisGiveaways) RunningGiveaway(ctx context.Context, room string) (Giveaway, bool, error) {
	id, err := s.rdb.Get(ctx, s.cart.prefix(room)+"gw:run").Result()
	if err == redis.Nil {
		return Giveaway{}, false, nil
	}
	if err != nil {
		return Giveaway{}, false, fmt.Errorf("cart: redis: %w", err)
	}
	g, err := s.Giveaway(ctx, room, id)
	if ErrorCode(err) == CodeNotFound {
		return Giveaway{}, false, nil
	}
	return g, err == nil, err
}

func (s *RedisGiveaways) EntryOf(ctx context.Context, room, id, user string) (string, error) {
	e, err := s.rdb.HGet(ctx, s.cart.prefix(room)+"gw:"+id+":u", user).Result()
	if err == redis.Nil {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cart: redis: %w", err)
	}
	return e, nil
}

func (s *RedisGiveaways) NoteChat(ctx context.Context, room, user string) error {
	_, err := s.cart.run(ctx, luaGwChat, room, "chatters", user, s.nowArg(), maxChatters, chatterTTL.Milliseconds())
	return err
}

func (s *RedisGiveaways) EndDue(ctx context.Context) ([]EndedGiveaway, error) {
	// The index's scores are Redis times; a node looks dueSlack ahead of
	// its own clock, so a node whose clock is behind still ends them (and
	// the close script decides by Redis TIME anyway).
	now := time.Now()
	if s.opt.Now != nil {
		now = s.opt.Now()
	}
	due, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.dueIndex(), ByScore: true, Start: "-inf",
		Stop: strconv.FormatInt(toMS(now.Add(dueSlack)), 10), Count: maxDueScan}).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	var out []EndedGiveaway
	for _, m := range due {
		room, id, _ := strings.Cut(m, "\n")
		v, err := s.cart.run(ctx, luaGwClose, room, "gw:"+id, id, s.nowArg())
		if err != nil {
			return out, err
		}
		var ann int64 = -1 // lease end while this node announces; -1: drop from the index
		switch str(v) {
		case "open":
			continue
		case "closed":
			e, lease, err := s.finish(ctx, room, id)
			if err != nil {
				return out, err
			}
			if lease > 0 {
				out = append(out, e)
				ann = lease
			} else {
				continue // another node ended it: it keeps it listed until announced
			}
		case "ended":
			e, lease, err := s.claimReplay(ctx, room, id)
			if err != nil {
				return out, err
			}
			switch {
			case lease == 0:
				continue // its announcer's lease runs
			case lease > 0:
				out = append(out, e)
				ann = lease
			}
		}
		if ann > 0 { // looked at again if not announced by then
			err = s.rdb.ZAddXX(ctx, s.dueIndex(), redis.Z{Score: float64(ann), Member: m}).Err()
		} else { // announced or gone: no longer due
			err = s.rdb.ZRem(ctx, s.dueIndex(), m).Err()
		}
		if err != nil {
			return out, fmt.Errorf("cart: redis: %w", err)
		}
	}
	return out, nil
}

// claimReplay claims an ended giveaway whose announcement lapsed and reads
// it with its prize orders; lease is as luaGwClaim answers.
func (s *RedisGiveaways) claimReplay(ctx context.Context, room, id string) (EndedGiveaway, int64, error) {
	v, err := s.cart.run(ctx, luaGwClaim, room, "gw:"+id, id, s.nowArg(), announceLease.Milliseconds())
	if err != nil {
		return EndedGiveaway{}, 0, err
	}
	lease, _ := v.(int64)
	if lease <= 0 {
		return EndedGiveaway{}, lease, nil
	}
	g, err := s.Giveaway(ctx, room, id)
	if err != nil {
		return EndedGiveaway{}, 0, err
	}
	e := EndedGiveaway{Room: room, Giveaway: g, Replay: true}
	for _, w := range g.Result {
		if w.OrderID == "" {
			continue
		}
		o, err := s.cart.Order(ctx, room, w.OrderID)
		if err != nil {
			return EndedGiveaway{}, 0, err
		}
		e.Orders = append(e.Orders, o)
	}
	return e, lease, nil
}

// MarkAnnounced marks the end announced and drops it from the due index.
func (s *RedisGiveaways) MarkAnnounced(ctx context.Context, room, id string) error {
	if !idPattern.MatchString(id) {
		return &Error{Code: CodeNotFound, Field: "giveaway_id", Message: fmt.Sprintf("no giveaway %q", id)}
	}
	if _, err := s.cart.run(ctx, luaGwAnnounced, room, "gw:"+id, id); err != nil {
		return err
	}
	if err := s.rdb.ZRem(ctx, s.dueIndex(), room+"\n"+id).Err(); err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	return nil
}

// finish draws a closed giveaway and ends it with its prize orders, if no
// other node did first (the script checks, so the orders exist once). lease
// is the end of this node's announcement lease, 0 if another node ended it.
func (s *RedisGiveaways) finish(ctx context.Context, room, id string) (e EndedGiveaway, lease int64, err error) {
	g, seed, err := s.read(ctx, room, id)
	if err != nil {
		return EndedGiveaway{}, 0, err
	}
	k := s.cart.prefix(room) + "gw:" + id
	entries, err := s.rdb.LRange(ctx, k+":l", 0, -1).Result()
	if err != nil {
		return EndedGiveaway{}, 0, fmt.Errorf("cart: redis: %w", err)
	}
	won, err := drawWinners(seed, id, entries, g.Winners)
	if err != nil {
		return EndedGiveaway{}, 0, err
	}
	g.EntrantsHash = EntrantsHash(entries)
	g.Result = make([]Winner, len(won))
	if len(won) > 0 {
		recs, err := s.rdb.HMGet(ctx, k+":e", won...).Result()
		if err != nil {
			return EndedGiveaway{}, 0, fmt.Errorf("cart: redis: %w", err)
		}
		for i, e := range won {
			var r entrantRec
			if js, ok := recs[i].(string); !ok || json.Unmarshal([]byte(js), &r) != nil {
				return EndedGiveaway{}, 0, fmt.Errorf("cart: giveaway %s: entry %s has no entrant", id, e)
			}
			g.Result[i] = Winner{Entry: e, Name: r.Name, User: r.User}
		}
	}
	now := time.Now()
	if s.opt.Now != nil {
		now = s.opt.Now()
	}
	now = truncMS(now)
	orders, args, err := s.prizeOrders(ctx, room, g, now)
	if err != nil {
		return EndedGiveaway{}, 0, err
	}
	recs := make([]winnerRec, len(g.Result))
	for i, w := range g.Result {
		recs[i] = winnerRec{Entry: w.Entry, Name: w.Name, User: w.User, Order: w.OrderID}
	}
	result, err := json.Marshal(recs)
	if err != nil {
		return EndedGiveaway{}, 0, err
	}
	args = append([]any{id, g.EntrantsHash, string(result), s.nowArg(), giveawayKeep.Milliseconds(), announceLease.Milliseconds()}, args...)
	v, err := s.cart.run(ctx, luaGwFinish, room, "gw:"+id, args...)
	if lease, _ = v.(int64); err != nil || lease <= 0 {
		return EndedGiveaway{}, 0, err
	}
	g.State, g.Seed = GiveawayEnded, seed
	return EndedGiveaway{Room: room, Giveaway: g, Orders: orders}, lease, nil
}

// prizeOrders is the RedisStore side's one function that makes a product
// prize's orders: one 0-price order (paid at once) per winner, returned
// with the finish script's arguments (order id, JSON) that store them with
// their webhook deliveries, atomically with the end of the giveaway. It
// sets each winner's OrderID and lets the outbox find the room.
func (s *RedisGiveaways) prizeOrders(ctx context.Context, room string, g Giveaway, now time.Time) ([]Order, []any, error) {
	if g.Prize.SKU == "" || len(g.Result) == 0 {
		return nil, nil, nil
	}
	p, err := s.cart.Product(ctx, room, g.Prize.SKU)
	if err != nil {
		return nil, nil, fmt.Errorf("cart: giveaway %s prize: %w", g.ID, err)
	}
	if err := s.rdb.ZAdd(ctx, s.cart.outboxIndex(), redis.Z{Score: float64(toMS(now)), Member: room}).Err(); err != nil {
		return nil, nil, fmt.Errorf("cart: redis: %w", err)
	}
	orders := make([]Order, len(g.Result))
	var args []any
	for i := range g.Result {
		o := prizeOrder(room, g, g.Result[i], i+1, p.Currency, now)
		body, err := json.Marshal(o)
		if err != nil {
			return nil, nil, err
		}
		orders[i] = o
		g.Result[i].OrderID = o.ID
		args = append(args, o.ID, string(body))
	}
	return orders, args, nil
}
