package cart

import (
	"context"
	"sync"
	"time"
)

// giveaways is the Service's giveaway part: the store, the listeners of
// ended giveaways and the throttled entrant counts (like sale.stock).
type giveaways struct {
	store GiveawayStore

	mu      sync.Mutex
	onEnd   []func(EndedGiveaway)
	onCount []func(room, id string, entrants int)
	counts  map[saleRef]int // changed since the last flush

	// noted remembers whom this node recorded as a chatter lately, so that
	// a busy chat costs the store one write per user per chatterRenote.
	noted map[saleRef]time.Time
}

const (
	chatterRenote = 10 * time.Minute
	maxNoted      = 100_000 // then the memory starts over
)

// giveawaysFor is the GiveawayStore next to a Store: local or Redis.
func giveawaysFor(store Store, gs GiveawayStore) (*giveaways, error) {
	g := &giveaways{store: gs, counts: map[saleRef]int{}, noted: map[saleRef]time.Time{}}
	if g.store == nil {
		switch s := store.(type) {
		case *LocalStore:
			ls, err := NewLocalGiveaways(s, GiveawayOptions{})
			if err != nil {
				return nil, err
			}
			g.store = ls
		case *RedisStore:
			g.store = NewRedisGiveaways(s, GiveawayOptions{})
		}
	}
	return g, nil
}

// Giveaways is the giveaway store (nil if the Store has none).
func (s *Service) Giveaways() GiveawayStore { return s.gw.store }

// OnGiveawayEnd is told of every giveaway that this node ended, after its
// prize orders are stored.
func (s *Service) OnGiveawayEnd(fn func(EndedGiveaway)) {
	s.gw.mu.Lock()
	s.gw.onEnd = append(s.gw.onEnd, fn)
	s.gw.mu.Unlock()
}

// OnGiveawayCount is told a giveaway's entrant count, at most once per
// cart.stock_interval per giveaway.
func (s *Service) OnGiveawayCount(fn func(room, id string, entrants int)) {
	s.gw.mu.Lock()
	s.gw.onCount = append(s.gw.onCount, fn)
	s.gw.mu.Unlock()
}

func (s *Service) giveawayStore() (GiveawayStore, error) {
	if s.gw.store == nil {
		return nil, errf(CodeUnavailable, "giveaways are not available on this node")
	}
	return s.gw.store, nil
}

// StartGiveaway is `giveaway.start`.
func (s *Service) StartGiveaway(ctx context.Context, room string, p GiveawayParams) (Giveaway, error) {
	gs, err := s.giveawayStore()
	if err != nil {
		return Giveaway{}, err
	}
	g, err := gs.StartGiveaway(ctx, room, p)
	if err == nil {
		s.log.Info("giveaway started", "room", room, "giveaway", g.ID, "winners", g.Winners, "sku", g.Prize.SKU, "ends_at", g.EndsAt)
	}
	return g, err
}

// EnterGiveaway is `giveaway.enter`.
func (s *Service) EnterGiveaway(ctx context.Context, room, id string, who Entrant) (EnterResult, error) {
	gs, err := s.giveawayStore()
	if err != nil {
		return EnterResult{}, err
	}
	r, err := gs.EnterGiveaway(ctx, room, id, who)
	if err == nil && !r.Replayed {
		s.gw.mu.Lock()
		if r.Entrants > s.gw.counts[saleRef{room, id}] {
			s.gw.counts[saleRef{room, id}] = r.Entrants
		}
		s.gw.mu.Unlock()
	}
	return r, err
}

// NoteChat records a chat post for the "chatted" entry rule (chat's hook).
func (s *Service) NoteChat(ctx context.Context, room, user string) {
	if s.gw.store == nil || user == "" {
		return
	}
	now, ref := s.now(), saleRef{room, user}
	s.gw.mu.Lock()
	if at, ok := s.gw.noted[ref]; ok && now.Sub(at) < chatterRenote {
		s.gw.mu.Unlock()
		return
	}
	if len(s.gw.noted) >= maxNoted {
		s.gw.noted = map[saleRef]time.Time{}
	}
	s.gw.noted[ref] = now
	s.gw.mu.Unlock()
	if err := s.gw.store.NoteChat(ctx, room, user); err != nil {
		s.gw.mu.Lock()
		delete(s.gw.noted, ref) // the next post tries again
		s.gw.mu.Unlock()
		s.log.Warn("giveaway: noting a chatter failed", "room", room, "err", err)
	}
}

// tickGiveaways sends the changed entrant counts and ends due giveaways;
// Run calls it every cart.stock_interval (every node: ending is exactly
// once whoever gets there first).
func (s *Service) tickGiveaways(ctx context.Context) {
	if s.gw.store == nil {
		return
	}
	s.gw.mu.Lock()
	counts := s.gw.counts
	s.gw.counts = map[saleRef]int{}
	onCount, onEnd := s.gw.onCount, s.gw.onEnd
	s.gw.mu.Unlock()
	for ref, n := range counts {
		for _, fn := range onCount {
			fn(ref.room, ref.id, n)
		}
	}
	ended, err := s.gw.store.EndDue(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("giveaway sweep failed", "err", err)
	}
	for _, e := range ended {
		s.log.Info("giveaway ended", "room", e.Room, "giveaway", e.Giveaway.ID, "entrants", e.Giveaway.Entrants,
			"winners", len(e.Giveaway.Result), "orders", len(e.Orders), "replay", e.Replay)
		for _, fn := range onEnd {
			fn(e)
		}
		if err := s.gw.store.MarkAnnounced(ctx, e.Room, e.Giveaway.ID); err != nil && ctx.Err() == nil {
			// Another node's tick announces it again after the lease.
			s.log.Warn("giveaway: marking the end announced failed", "room", e.Room, "giveaway", e.Giveaway.ID, "err", err)
		}
		if e.Replay {
			continue // counted where it ended; the outbox finds its orders by polling
		}
		s.hmu.RLock()
		for _, o := range e.Orders {
			s.m.ordered(len(o.Items))
			for _, fn := range s.onOrder {
				fn(o)
			}
		}
		s.hmu.RUnlock()
	}
}
