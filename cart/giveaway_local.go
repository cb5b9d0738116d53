package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LocalGiveaways is the one-node GiveawayStore, next to a LocalStore whose
// stock it holds prizes from and whose database stores the prize orders.
// Giveaways are written to the LocalStore's bbolt file
// (giveaway_local_db.go): a running one, its seed and its entries survive a
// restart, which holds its prize units again and ends it once. The last
// maxKeptGiveaways ended ones per room are kept, so that the verify page
// keeps answering.
type LocalGiveaways struct {
	cart *LocalStore
	opt  GiveawayOptions

	mu       sync.Mutex
	rooms    map[string]*localGiveawayRoom
	chatters map[string]map[string]time.Time // room -> user -> last post
	// unannounced are the ended giveaways not yet marked announced, with
	// the end of their announcement lease.
	unannounced map[saleRef]time.Time
}

var _ GiveawayStore = (*LocalGiveaways)(nil)

// maxKeptGiveaways bounds the ended giveaways kept per room.
const maxKeptGiveaways = 50

type localGiveawayRoom struct {
	running string // id of the open or closed giveaway
	byID    map[string]*localGiveaway
	order   []string // ids, oldest first
}

type localGiveaway struct {
	g       Giveaway
	seed    string
	users   map[string]string // user -> entry
	entries []string          // in entry order
	names   map[string]Entrant
	held    int // prize units held from stock
	// unannounced: ended, and MarkAnnounced not called yet.
	unannounced bool
	next        int // the database place of the next entry
	inflight    int // entries taken whose write has not returned
}

// NewLocalGiveaways keeps giveaways for the rooms of cs, loading those its
// database holds.
func NewLocalGiveaways(cs *LocalStore, opt GiveawayOptions) (*LocalGiveaways, error) {
	opt.setDefaults()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &LocalGiveaways{cart: cs, opt: opt, rooms: map[string]*localGiveawayRoom{}, chatters: map[string]map[string]time.Time{},
		unannounced: map[saleRef]time.Time{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.loadChatters(s.now()); err != nil {
		return nil, fmt.Errorf("cart: load chatters: %w", err)
	}
	cs.mu.Lock()
	cs.forget = append(cs.forget, s.forgetScope)
	cs.mu.Unlock()
	return s, nil
}

// forgetScope drops a retired scope's giveaways and chatters from memory
// (LocalStore.ForgetScope, which calls it, deletes the room's bucket and
// with it the stored giveaways). A running one's held units go with the
// room's memory.
func (s *LocalGiveaways) forgetScope(scope string) {
	s.mu.Lock()
	delete(s.rooms, scope)
	delete(s.chatters, scope)
	for ref := range s.unannounced {
		if ref.room == scope {
			delete(s.unannounced, ref)
		}
	}
	s.mu.Unlock()
}

func (s *LocalGiveaways) now() time.Time { return truncMS(s.opt.Now()) }

func (s *LocalGiveaways) room(id string) *localGiveawayRoom {
	r := s.rooms[id]
	if r == nil {
		r = &localGiveawayRoom{byID: map[string]*localGiveaway{}}
		s.rooms[id] = r
	}
	return r
}

func (s *LocalGiveaways) StartGiveaway(_ context.Context, room string, p GiveawayParams) (Giveaway, error) {
	if err := validRoom(room); err != nil {
		return Giveaway{}, err
	}
	if err := p.normalize(); err != nil {
		return Giveaway{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	gr := s.room(room)
	if gr.running != "" {
		return Giveaway{}, errf(CodeBadRequest, "giveaway %s is still running; one at a time", gr.running)
	}
	seed, commit := newSeed()
	g := Giveaway{ID: newID("g"), Prize: p.Prize, Rule: p.Rule, Winners: p.Winners, Commitment: commit,
		StartedAt: now, EndsAt: now.Add(time.Duration(p.EntryS) * time.Second), State: GiveawayOpen, Host: p.Host}
	lg := &localGiveaway{g: g, seed: seed, users: map[string]string{}, names: map[string]Entrant{}}
	if p.Prize.SKU != "" {
		// Hold the prize units as a list-price hold is held: out of Stock,
		// counted in pheld (so DeleteProduct refuses while they are).
		r := s.cart.room(room)
		r.mu.Lock()
		prod := r.products[p.Prize.SKU]
		switch {
		case prod == nil:
			r.mu.Unlock()
			return Giveaway{}, &Error{Code: CodeNotFound, Field: "prize", Message: fmt.Sprintf("no product %q", p.Prize.SKU)}
		case prod.Stock < p.Winners:
			r.mu.Unlock()
			return Giveaway{}, &Error{Code: CodeSoldOut, Field: "prize", Message: fmt.Sprintf("only %d of %s in stock", prod.Stock, p.Prize.SKU)}
		}
		prod.Stock -= p.Winners
		r.pheld[p.Prize.SKU] += p.Winners
		r.mu.Unlock()
		lg.held = p.Winners
	}
	if err := s.cart.db.Update(func(tx *bolt.Tx) error { return putGiveaway(tx, room, lg) }); err != nil {
		s.release(room, lg)
		return Giveaway{}, fmt.Errorf("cart: giveaway: %w", err)
	}
	gr.byID[g.ID] = lg
	gr.order = append(gr.order, g.ID)
	gr.running = g.ID
	s.prune(room, gr)
	return g, nil
}

// release gives back lg's held prize units.
func (s *LocalGiveaways) release(room string, lg *localGiveaway) {
	if lg.held == 0 {
		return
	}
	r := s.cart.room(room)
	r.mu.Lock()
	r.pheld[lg.g.Prize.SKU] -= lg.held
	if p := r.products[lg.g.Prize.SKU]; p != nil {
		p.Stock += lg.held
	}
	r.mu.Unlock()
	lg.held = 0
}

// prune forgets the oldest ended giveaways beyond maxKeptGiveaways (in
// memory and in the database; a failed delete is retried by the next prune
// or the next restart's).
func (s *LocalGiveaways) prune(room string, gr *localGiveawayRoom) {
	var gone []string
	for len(gr.order) > maxKeptGiveaways {
		id := gr.order[0]
		if gr.byID[id].g.State != GiveawayEnded {
			break
		}
		delete(gr.byID, id)
		delete(s.unannounced, saleRef{room, id})
		gr.order = gr.order[1:]
		gone = append(gone, id)
	}
	if len(gone) == 0 {
		return
	}
	_ = s.cart.db.Update(func(tx *bolt.Tx) error {
		for _, id := range gone {
			if err := deleteGiveaway(tx, room, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *LocalGiveaways) get(room, id string) (*localGiveaway, error) {
	if gr := s.rooms[room]; gr != nil {
		if lg := gr.byID[id]; lg != nil {
			return lg, nil
		}
	}
	return nil, &Error{Code: CodeNotFound, Field: "giveaway_id", Message: fmt.Sprintf("no giveaway %q", id)}
}

func (s *LocalGiveaways) EnterGiveaway(_ context.Context, room, id string, who Entrant) (EnterResult, error) {
	if err := validUser(who.User); err != nil {
		return EnterResult{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	lg, err := s.get(room, id)
	if err != nil {
		return EnterResult{}, err
	}
	if e, ok := lg.users[who.User]; ok {
		return EnterResult{Entry: e, Replayed: true, Entrants: len(lg.entries)}, nil
	}
	if lg.g.State != GiveawayOpen || !now.Before(lg.g.EndsAt) {
		return EnterResult{}, errf(CodeGiveawayClosed, "giveaway %s is closed for entries", id)
	}
	if who.User == lg.g.Host {
		return EnterResult{}, errf(CodeNotAllowed, "the host cannot enter their own giveaway")
	}
	if len(lg.entries) >= s.opt.MaxEntrants {
		return EnterResult{}, errf(CodeLimitReached, "giveaway %s is full (%d entrants)", id, s.opt.MaxEntrants)
	}
	if err := s.allowed(room, lg.g.Rule, who.User, now); err != nil {
		return EnterResult{}, err
	}
	e := newEntryID()
	for lg.names[e].User != "" {
		e = newEntryID()
	}
	// Taken in memory now (its place fixes its order), written outside the
	// lock so that concurrent entries share one fsync (bbolt Batch); EndDue
	// waits for the giveaway's writes in flight before closing it.
	lg.users[who.User] = e
	lg.names[e] = who
	lg.entries = append(lg.entries, e)
	lg.g.Entrants = len(lg.entries)
	place, n := lg.next, len(lg.entries)
	lg.next++
	lg.inflight++
	s.mu.Unlock()
	err = s.cart.db.Batch(func(tx *bolt.Tx) error {
		return putGiveawayEntry(tx, room, id, place, gwEntryRec{Entry: e, User: who.User, Name: who.Name})
	})
	s.mu.Lock()
	lg.inflight--
	if err != nil { // not durable: not entered
		delete(lg.users, who.User)
		delete(lg.names, e)
		lg.entries = slices.DeleteFunc(lg.entries, func(x string) bool { return x == e })
		lg.g.Entrants = len(lg.entries)
		return EnterResult{}, fmt.Errorf("cart: giveaway entry: %w", err)
	}
	return EnterResult{Entry: e, Entrants: n}, nil
}

// allowed checks the entry rule; s.mu is held.
func (s *LocalGiveaways) allowed(room string, rule GiveawayRule, user string, now time.Time) error {
	switch rule {
	case RuleChatted:
		if _, ok := s.chatters[room][user]; !ok {
			return errf(CodeNotAllowed, "this giveaway is for viewers who have chatted in the room; say something first")
		}
	case RuleBought:
		ok, err := s.cart.hasBought(room, user, now)
		if err != nil {
			return err
		}
		if !ok {
			return errf(CodeNotAllowed, "this giveaway is for viewers who have bought in this room")
		}
	}
	return nil
}

// hasBought reports whether user has a checkout in room within
// cart.key_retention (the buyer's kept checkout keys, kind 'o').
func (s *LocalStore) hasBought(room, user string, now time.Time) (bool, error) {
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		ukeys := roomBucketRO(tx, room, bUKeys)
		if ukeys == nil {
			return nil
		}
		prefix := append([]byte(user), 0)
		cutoff := toMS(now.Add(-s.cfg.KeyRetention))
		c := ukeys.Cursor()
		for k, _ := c.Seek(prefix); k != nil && len(k) >= len(prefix)+9 && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			if rest[8] == 'o' && int64(be64(rest)) >= cutoff {
				found = true
				return nil
			}
		}
		return nil
	})
	return found, err
}

func be64(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

func (s *LocalGiveaways) Giveaway(_ context.Context, room, id string) (Giveaway, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lg, err := s.get(room, id)
	if err != nil {
		return Giveaway{}, err
	}
	return lg.view(), nil
}

func (lg *localGiveaway) view() Giveaway {
	g := lg.g
	g.Result = append([]Winner(nil), g.Result...)
	return g
}

func (s *LocalGiveaways) GiveawayEntries(_ context.Context, room, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lg, err := s.get(room, id)
	if err != nil || lg.g.State == GiveawayOpen {
		return nil, err
	}
	return append([]string(nil), lg.entries...), nil
}

func (s *LocalGiveaways) RunningGiveaway(_ context.Context, room string) (Giveaway, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gr := s.rooms[room]
	if gr == nil || gr.running == "" {
		return Giveaway{}, false, nil
	}
	return gr.byID[gr.running].view(), true, nil
}

func (s *LocalGiveaways) EntryOf(_ context.Context, room, id, user string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lg, err := s.get(room, id)
	if err != nil {
		return "", err
	}
	return lg.users[user], nil
}

// NoteChat remembers the post and writes it to the database (batched with
// others: the Service notes a user at most every chatterRenote), so that a
// restart keeps who has chatted.
func (s *LocalGiveaways) NoteChat(_ context.Context, room, user string) error {
	if !s.noteChat(room, user) {
		return nil
	}
	ms := s.now().UnixMilli()
	return s.cart.db.Batch(func(tx *bolt.Tx) error { return putChatter(tx, room, user, ms) })
}

// noteChat is NoteChat in memory; false if the room's list is full.
func (s *LocalGiveaways) noteChat(room, user string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.chatters[room]
	if m == nil {
		m = map[string]time.Time{}
		s.chatters[room] = m
	}
	if _, ok := m[user]; !ok && len(m) >= maxChatters {
		for u, at := range m { // full: forget anyone not seen for a day, else refuse quietly
			if now.Sub(at) > chatterTTL {
				delete(m, u)
			}
		}
		if len(m) >= maxChatters {
			return false
		}
	}
	m[user] = now
	return true
}

// EndDue closes and ends, under the one lock, every giveaway whose window
// is over: one process, so "exactly once" is the lock's.
func (s *LocalGiveaways) EndDue(_ context.Context) ([]EndedGiveaway, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []EndedGiveaway
	rooms := make([]string, 0, len(s.rooms))
	for id := range s.rooms {
		rooms = append(rooms, id)
	}
	sort.Strings(rooms)
	for _, room := range rooms {
		gr := s.rooms[room]
		if gr.running == "" {
			continue
		}
		lg := gr.byID[gr.running]
		if now.Before(lg.g.EndsAt) || lg.inflight > 0 {
			continue // entry writes in flight: the list is fixed once they return
		}
		lg.g.State = GiveawayClosed
		lg.g.EntrantsHash = EntrantsHash(lg.entries)
		e, err := s.finish(room, lg, now)
		if err != nil {
			return out, err // stays closed; the next sweep tries again
		}
		gr.running = ""
		s.unannounced[saleRef{room, lg.g.ID}] = now.Add(announceLease)
		out = append(out, e)
	}
	return s.replays(out, now)
}

// replays appends the ended giveaways whose announcement lease is over and
// claims them for another lease; s.mu is held.
func (s *LocalGiveaways) replays(out []EndedGiveaway, now time.Time) ([]EndedGiveaway, error) {
	for ref, until := range s.unannounced {
		if now.Before(until) {
			continue
		}
		lg, err := s.get(ref.room, ref.id)
		if err != nil {
			delete(s.unannounced, ref)
			continue
		}
		e := EndedGiveaway{Room: ref.room, Giveaway: lg.view(), Replay: true}
		for _, w := range lg.g.Result {
			if w.OrderID == "" {
				continue
			}
			o, err := s.cart.Order(context.Background(), ref.room, w.OrderID)
			if err != nil {
				return out, err
			}
			e.Orders = append(e.Orders, o)
		}
		s.unannounced[ref] = now.Add(announceLease)
		out = append(out, e)
	}
	return out, nil
}

// MarkAnnounced writes that the giveaway's end was published.
func (s *LocalGiveaways) MarkAnnounced(_ context.Context, room, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lg, err := s.get(room, id)
	if err != nil || !lg.unannounced {
		return err
	}
	lg.unannounced = false
	if err := s.cart.db.Update(func(tx *bolt.Tx) error { return putGiveaway(tx, room, lg) }); err != nil {
		lg.unannounced = true
		return fmt.Errorf("cart: giveaway %s: %w", id, err)
	}
	delete(s.unannounced, saleRef{room, id})
	return nil
}

// finish draws, stores the prize orders and gives unused units back.
func (s *LocalGiveaways) finish(room string, lg *localGiveaway, now time.Time) (EndedGiveaway, error) {
	won, err := drawWinners(lg.seed, lg.g.ID, lg.entries, lg.g.Winners)
	if err != nil {
		return EndedGiveaway{}, err
	}
	g := lg.g
	g.Result = make([]Winner, len(won))
	for i, e := range won {
		who := lg.names[e]
		g.Result[i] = Winner{Entry: e, Name: who.Name, User: who.User}
	}
	g.State, g.Seed = GiveawayEnded, lg.seed
	ended := &localGiveaway{g: g, seed: lg.seed, unannounced: true} // what is stored as the end
	var orders []Order
	if lg.held > 0 {
		orders, err = s.cart.givePrize(room, g, lg.held, now, func(tx *bolt.Tx, orders []Order) error {
			for i := range orders {
				ended.g.Result[i].OrderID = orders[i].ID
			}
			return putGiveaway(tx, room, ended)
		})
		if err != nil {
			return EndedGiveaway{}, err
		}
	} else if err := s.cart.db.Update(func(tx *bolt.Tx) error { return putGiveaway(tx, room, ended) }); err != nil {
		return EndedGiveaway{}, fmt.Errorf("cart: giveaway %s: %w", g.ID, err)
	}
	lg.g, lg.held, lg.unannounced = ended.g, 0, true
	return EndedGiveaway{Room: room, Giveaway: lg.view(), Orders: orders}, nil
}

// givePrize is the LocalStore's one function that turns a product prize
// into orders: one 0-price order (paid at once) per winner of g, each
// stored with its webhook delivery in one bbolt transaction, and the held
// units that no winner took back into stock. also runs in that transaction
// (the giveaway's end is stored with its orders).
func (s *LocalStore) givePrize(room string, g Giveaway, held int, now time.Time, also func(*bolt.Tx, []Order) error) ([]Order, error) {
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	prod := r.products[g.Prize.SKU]
	r.mu.Unlock()
	if prod == nil {
		return nil, fmt.Errorf("cart: giveaway %s: product %s is gone", g.ID, g.Prize.SKU)
	}
	orders := make([]Order, len(g.Result))
	for i, w := range g.Result {
		orders[i] = prizeOrder(room, g, w, i+1, prod.Currency, now)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob, err := roomBucket(tx, room, bOrders)
		if err != nil {
			return err
		}
		products, err := roomBucket(tx, room, bProducts)
		if err != nil {
			return err
		}
		var p Product
		if v := products.Get([]byte(g.Prize.SKU)); v != nil {
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			p.Stock -= len(orders) // a given unit leaves the product for good
			if err := putJSON(products, []byte(p.SKU), p); err != nil {
				return err
			}
		}
		for _, o := range orders {
			if err := putJSON(ob, []byte(o.ID), o); err != nil {
				return err
			}
			if err := putJSON(tx.Bucket(bOutbox), []byte(room+"\x00"+o.ID), outboxEntry{Next: toMS(now)}); err != nil {
				return err
			}
		}
		return also(tx, orders)
	})
	if err != nil {
		return nil, fmt.Errorf("cart: giveaway %s: %w", g.ID, err)
	}
	r.mu.Lock()
	r.pheld[g.Prize.SKU] -= held
	if p := r.products[g.Prize.SKU]; p != nil { // PutProduct may have replaced it
		p.Stock += held - len(orders)
	}
	r.mu.Unlock()
	return orders, nil
}
