package cart

import (
	"context"
	"sync"
	"time"
)

// auctionCloseEvery is how often each node's closer looks for auctions at
// their end: the lateness of a close is at most this plus one script.
const auctionCloseEvery = 100 * time.Millisecond

// auctionStore is the Service's store as an AuctionStore (both stores are).
func (s *Service) auctionStore() (AuctionStore, error) {
	as, ok := s.store.(AuctionStore)
	if !ok {
		return nil, errf(CodeUnavailable, "this server's store runs no auctions")
	}
	return as, nil
}

// OnAuctionClosed is told of every auction this node closed (exactly one
// node closes each), with the winner's order if there is one.
func (s *Service) OnAuctionClosed(fn func(room string, r CloseResult)) {
	s.hmu.Lock()
	s.onAucClosed = append(s.onAucClosed, fn)
	s.hmu.Unlock()
}

// StartAuction is `auction.start`.
func (s *Service) StartAuction(ctx context.Context, room string, p AuctionParams) (Auction, error) {
	as, err := s.auctionStore()
	if err != nil {
		return Auction{}, err
	}
	a, err := as.StartAuction(ctx, room, p)
	if err == nil {
		s.m.aucStarted()
		s.log.Info("auction started", "room", room, "auction", a.ID, "sku", a.SKU, "start_cents", a.StartCents, "ends_at", a.EndsAt)
	}
	return a, err
}

// Bid is `auction.bid` and `auction.max`.
func (s *Service) Bid(ctx context.Context, room string, p BidParams) (BidResult, error) {
	as, err := s.auctionStore()
	if err != nil {
		return BidResult{}, err
	}
	r, err := as.Bid(ctx, room, p)
	s.m.aucBid(p.Max, r, err)
	return r, err
}

// RemoveBidder is `auction.remove_bidder`.
func (s *Service) RemoveBidder(ctx context.Context, room, auctionID, user string) (BidResult, error) {
	as, err := s.auctionStore()
	if err != nil {
		return BidResult{}, err
	}
	r, err := as.RemoveBidder(ctx, room, auctionID, user)
	if err == nil {
		s.m.aucRemoved()
		s.log.Info("auction bidder removed", "room", room, "auction", auctionID, "user", user)
	}
	return r, err
}

// StopAuction is `auction.stop`.
func (s *Service) StopAuction(ctx context.Context, room, auctionID string) (Auction, error) {
	as, err := s.auctionStore()
	if err != nil {
		return Auction{}, err
	}
	a, err := as.StopAuction(ctx, room, auctionID)
	if err == nil {
		s.m.aucEnded("stopped")
		s.log.Info("auction stopped", "room", room, "auction", auctionID)
	}
	return a, err
}

// RunningAuctions lists a room's running auctions (for a welcome).
func (s *Service) RunningAuctions(ctx context.Context, room string) ([]Auction, error) {
	as, err := s.auctionStore()
	if err != nil {
		return nil, nil
	}
	return as.RunningAuctions(ctx, room)
}

// startAuctionCloser runs the closer until ctx ends or the returned stop
// is called (which waits for it).
func (s *Service) startAuctionCloser(ctx context.Context) (stop func()) {
	if _, err := s.auctionStore(); err != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(auctionCloseEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.CloseDueAuctions(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("auction close failed", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// CloseDueAuctions tries to close every auction at its end (each node's
// closer calls it; the store closes each auction once).
func (s *Service) CloseDueAuctions(ctx context.Context) error {
	as, err := s.auctionStore()
	if err != nil {
		return err
	}
	due, err := as.DueAuctions(ctx, 100)
	if err != nil {
		return err
	}
	for _, d := range due {
		r, err := as.CloseAuction(ctx, d.Room, d.ID)
		if err != nil {
			if ErrorCode(err) == CodeNotFound {
				continue
			}
			return err
		}
		if !r.Closed {
			continue
		}
		a := r.Auction
		s.log.Info("auction ended", "room", d.Room, "auction", a.ID, "amount_cents", a.AmountCents, "sold", r.Order != nil)
		s.hmu.RLock()
		for _, fn := range s.onAucClosed {
			fn(d.Room, r)
		}
		if r.Order != nil {
			s.m.aucEnded("sold")
		} else {
			s.m.aucEnded("no_sale")
		}
		if r.Order != nil {
			s.m.ordered(1)
			for _, fn := range s.onOrder {
				fn(*r.Order)
			}
		}
		s.hmu.RUnlock()
	}
	return nil
}
