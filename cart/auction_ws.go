package cart

import (
	"context"

	"liveroom/room"
)

// Auctions on the room WebSocket (docs/protocol.md, "Auctions"):
// auction.start and auction.stop for hosts, auction.remove_bidder for
// moderators, auction.bid and auction.max for signed-in viewers. Room events
// (auction.started, auction.bid, auction.extended, auction.ended) go through
// the bus; they carry the auction's version, which grows with every change
// of the lead, so a client keeps the highest it has seen whatever order two
// nodes' events arrive in. The bidder gets a private copy of auction.bid
// with the request's ref; auction.outbid, auction.won and auction.removed
// are private to their user.

type auctionWS struct {
	*WS
}

func (w *WS) attachAuctions() {
	a := auctionWS{w}
	w.hub.Handle("auction.start", room.RoleHost, a.start)
	w.hub.Handle("auction.stop", room.RoleHost, a.stop)
	w.hub.Handle("auction.bid", room.RoleViewer, a.bid)
	w.hub.Handle("auction.max", room.RoleViewer, a.max)
	w.hub.Handle("auction.remove_bidder", room.RoleModerator, a.remove)
	w.hub.AddSnapshot(a.snapshot)
	w.svc.OnAuctionClosed(a.onClosed)
}

// bidEvent is auction.bid: the lead, never a maximum.
func bidEvent(a Auction, reason string) room.Event {
	m := map[string]any{"auction_id": a.ID, "amount_cents": a.AmountCents, "bidder": a.Leader,
		"ends_at": a.EndsAt, "next_cents": a.NextCents, "version": a.Version, "reserve_met": a.ReserveMet}
	if !a.Now.IsZero() {
		m["now"] = a.Now // the auction's clock: countdowns correct for the viewer's offset to it
	}
	if reason != "" {
		m["reason"] = reason
	}
	return room.MustEvent("auction.bid", m)
}

func (a auctionWS) start(ctx context.Context, req *room.Request) error {
	var p AuctionParams
	if err := req.Decode(&p); err != nil {
		return err
	}
	p.Host = req.From.ID
	au, err := a.svc.StartAuction(ctx, req.Room, p)
	if err != nil {
		return protoErr(err)
	}
	return a.publishDone(ctx, req.Room, room.MustEvent("auction.started", au))
}

func (a auctionWS) stop(ctx context.Context, req *room.Request) error {
	var b struct {
		AuctionID string `json:"auction_id"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	au, err := a.svc.StopAuction(ctx, req.Room, b.AuctionID)
	if err != nil {
		return protoErr(err)
	}
	return a.publishDone(ctx, req.Room, room.MustEvent("auction.ended", map[string]any{
		"auction_id": au.ID, "winner": nil, "amount_cents": au.AmountCents, "reason": "stopped", "version": au.Version}))
}

// publishDone publishes the event of a change already made, whether or not
// the request that made it is still there.
func (a auctionWS) publishDone(ctx context.Context, roomID string, ev room.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	_, err := a.hub.Publish(ctx, roomID, ev)
	return err
}

func (a auctionWS) bid(ctx context.Context, req *room.Request) error {
	var b struct {
		AuctionID string `json:"auction_id"`
		Amount    int64  `json:"amount_cents"`
		Key       string `json:"key"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	return a.place(ctx, req, BidParams{AuctionID: b.AuctionID, Cents: b.Amount, Key: b.Key})
}

func (a auctionWS) max(ctx context.Context, req *room.Request) error {
	var b struct {
		AuctionID string `json:"auction_id"`
		Max       int64  `json:"max_cents"`
		Key       string `json:"key"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	return a.place(ctx, req, BidParams{AuctionID: b.AuctionID, Cents: b.Max, Key: b.Key, Max: true})
}

func (a auctionWS) place(ctx context.Context, req *room.Request, p BidParams) error {
	p.User, p.Name = req.From.ID, req.From.Name
	r, err := a.svc.Bid(ctx, req.Room, p)
	if err != nil {
		return protoErr(err)
	}
	reply := bidEvent(r.Auction, "")
	if p.Max {
		reply = room.MustEvent("auction.bid", map[string]any{"auction_id": r.Auction.ID, "amount_cents": r.Auction.AmountCents,
			"bidder": r.Auction.Leader, "ends_at": r.Auction.EndsAt, "next_cents": r.Auction.NextCents,
			"version": r.Auction.Version, "reserve_met": r.Auction.ReserveMet, "max_cents": p.Cents, "now": r.Auction.Now})
	}
	req.Reply(reply) // to the bidder, with the ref: this request's one answer
	if r.Replayed || !r.Changed {
		return nil
	}
	// The bid is accepted and answered: a failed announcement is logged,
	// not turned into a second (error) answer. Viewers converge on the
	// next event's version, a resume or a welcome.
	if err := a.announce(ctx, req.Room, p.User, r, ""); err != nil {
		a.log.Warn("auction: announcing a bid failed", "room", req.Room, "auction", p.AuctionID, "err", err)
	}
	return nil
}

// announce publishes a change of the lead and tells who was outbid. The
// change is made: a bidder who hangs up meanwhile must not cancel telling
// the room, so the request's cancellation does not reach it.
func (a auctionWS) announce(ctx context.Context, roomID, by string, r BidResult, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	au := r.Auction
	if _, err := a.hub.Publish(ctx, roomID, bidEvent(au, reason)); err != nil {
		return err
	}
	if r.Extended {
		if _, err := a.hub.Publish(ctx, roomID, room.MustEvent("auction.extended", map[string]any{
			"auction_id": au.ID, "ends_at": au.EndsAt, "version": au.Version, "now": au.Now})); err != nil {
			return err
		}
	}
	lead := ""
	if au.Leader != nil {
		lead = au.Leader.ID
	}
	outbid := room.MustEvent("auction.outbid", map[string]any{"auction_id": au.ID, "amount_cents": au.AmountCents, "next_cents": au.NextCents})
	notify := map[string]bool{}
	if r.Prev != "" && r.Prev != lead {
		notify[r.Prev] = true
	}
	if reason == "" && by != lead { // a maximum answered the bid at once
		notify[by] = true
	}
	if reason != "" {
		delete(notify, by) // a removed bidder is told auction.removed instead
	}
	for u := range notify {
		if err := a.hub.SendUser(ctx, roomID, u, outbid); err != nil {
			return err
		}
	}
	return nil
}

func (a auctionWS) remove(ctx context.Context, req *room.Request) error {
	var b struct {
		AuctionID string `json:"auction_id"`
		UserID    string `json:"user_id"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	r, err := a.svc.RemoveBidder(ctx, req.Room, b.AuctionID, b.UserID)
	if err != nil {
		return protoErr(err)
	}
	req.Reply(room.MustEvent("auction.removed", map[string]any{"auction_id": r.Auction.ID, "user_id": b.UserID}))
	err = a.hub.SendUser(ctx, req.Room, b.UserID, room.MustEvent("auction.removed", map[string]any{
		"auction_id": r.Auction.ID, "user_id": b.UserID}))
	if err == nil && r.Changed {
		err = a.announce(ctx, req.Room, b.UserID, r, "bidder_removed")
	}
	if err != nil { // done and answered; see place
		a.log.Warn("auction: announcing a removal failed", "room", req.Room, "auction", b.AuctionID, "err", err)
	}
	return nil
}

func (a auctionWS) snapshot(ctx context.Context, s *room.Snapshot) error {
	list, err := a.svc.RunningAuctions(ctx, s.Room)
	if err != nil {
		return err
	}
	if len(list) > 0 {
		s.SetRoom("auction", list[len(list)-1])
	}
	return nil
}

// onClosed runs on the one node that closed the auction.
func (a auctionWS) onClosed(roomID string, r CloseResult) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	au := r.Auction
	ev := room.MustEvent("auction.ended", map[string]any{"auction_id": au.ID, "winner": au.Winner,
		"amount_cents": au.AmountCents, "version": au.Version, "reserve_met": au.ReserveMet})
	if _, err := a.hub.Publish(ctx, roomID, ev); err != nil {
		a.log.Warn("auction: publish failed", "room", roomID, "auction", au.ID, "err", err)
	}
	if r.Order == nil {
		return
	}
	o := r.Order
	// The order as order.confirmed shows it: its state and, while it awaits
	// payment, the signed pay_url (order_ws.go).
	won := room.MustEvent("auction.won", map[string]any{"auction_id": au.ID, "order": viewOrder(*o, a.payURL(ctx, roomID, *o))})
	if err := a.hub.SendUser(ctx, roomID, o.User, won); err != nil {
		a.log.Warn("auction: telling the winner failed", "room", roomID, "auction", au.ID, "err", err)
	}
}
