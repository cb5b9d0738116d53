package cart

import (
	"context"
	"time"

	"liveroom/room"
)

// The giveaway messages on the room WebSocket (registered in AttachWS):
// giveaway.start (host) and giveaway.enter (viewer+); room events
// giveaway.started, giveaway.entrants (transient count) and giveaway.ended;
// private giveaway.entered and giveaway.won. docs/protocol.md has the shapes.

// giveawayView is a giveaway as events and the welcome show it.
type giveawayView struct {
	ID         string        `json:"giveaway_id"`
	Prize      Prize         `json:"prize"`
	Rule       GiveawayRule  `json:"rule"`
	Winners    int           `json:"winner_count"` // giveaway.ended's winners is the list
	Commitment string        `json:"commitment"`
	EndsAt     time.Time     `json:"ends_at"`
	State      GiveawayState `json:"state"`
	Entrants   int           `json:"entrants"`
}

func viewGiveaway(g Giveaway) giveawayView {
	return giveawayView{ID: g.ID, Prize: g.Prize, Rule: g.Rule, Winners: g.Winners, Commitment: g.Commitment,
		EndsAt: g.EndsAt, State: g.State, Entrants: g.Entrants}
}

// giveawayStart answers with the giveaway.started room event.
func (w *WS) giveawayStart(ctx context.Context, req *room.Request) error {
	var p GiveawayParams
	if err := req.Decode(&p); err != nil {
		return err
	}
	p.Host = req.From.ID
	g, err := w.svc.StartGiveaway(ctx, req.Room, p)
	if err != nil {
		return protoErr(err)
	}
	_, err = w.hub.Publish(ctx, req.Room, room.MustEvent("giveaway.started", viewGiveaway(g)))
	return err
}

// giveawayEnter answers privately with the entrant's own entry id, to all
// of their tabs (a repeat answers the same entry).
func (w *WS) giveawayEnter(ctx context.Context, req *room.Request) error {
	var b struct {
		GiveawayID string `json:"giveaway_id"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.GiveawayID == "" {
		return room.Errorf(room.CodeBadRequest, "giveaway_id is required")
	}
	if req.From.Role.AtLeast(room.RoleHost) {
		return room.Errorf(string(CodeNotAllowed), "hosts and admins cannot enter giveaways")
	}
	r, err := w.svc.EnterGiveaway(ctx, req.Room, b.GiveawayID, Entrant{User: req.From.ID, Name: req.From.Name})
	if err != nil {
		return protoErr(err)
	}
	ev := room.MustEvent("giveaway.entered", map[string]any{"giveaway_id": b.GiveawayID, "entry": r.Entry, "entrants": r.Entrants})
	ev.Ref = req.Ref
	return w.hub.SendUser(ctx, req.Room, req.From.ID, ev)
}

// giveawaySnapshot shows a joiner the running giveaway (room.giveaway) and
// their own entry in it (giveaway_entry).
func (w *WS) giveawaySnapshot(ctx context.Context, s *room.Snapshot) error {
	gs := w.svc.Giveaways()
	if gs == nil {
		return nil
	}
	g, ok, err := gs.RunningGiveaway(ctx, s.Room)
	if err != nil || !ok {
		return err
	}
	s.SetRoom("giveaway", viewGiveaway(g))
	if s.You.Guest() {
		return nil
	}
	entry, err := gs.EntryOf(ctx, s.Room, g.ID, s.You.ID)
	if err != nil || entry == "" {
		return err
	}
	s.Set("giveaway_entry", entry) // this user's own entry: every device shows "you're in"
	return nil
}

func (w *WS) onGiveawayCount(roomID, id string, n int) {
	ev := room.MustEvent("giveaway.entrants", map[string]any{"giveaway_id": id, "entrants": n})
	ev.Transient = true // superseded by the next one; a joiner gets the count in its welcome
	w.publish(roomID, ev)
}

// winnerView is a winner as published: the entry and display name only.
type winnerView struct {
	Entry string `json:"entry"`
	Name  string `json:"name"`
}

func (w *WS) onGiveawayEnd(e EndedGiveaway) {
	g := e.Giveaway
	ws := make([]winnerView, len(g.Result))
	for i, x := range g.Result {
		ws[i] = winnerView{Entry: x.Entry, Name: x.Name}
	}
	w.publish(e.Room, room.MustEvent("giveaway.ended", map[string]any{
		"giveaway_id": g.ID, "seed": g.Seed, "entrants": g.Entrants, "entrants_hash": g.EntrantsHash,
		"winners": ws, "prize": g.Prize, "procedure": DrawProcedure,
	}))
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	for i, x := range g.Result {
		body := map[string]any{"giveaway_id": g.ID, "entry": x.Entry, "prize": g.Prize}
		if i < len(e.Orders) {
			o := e.Orders[i]
			body["order"] = viewOrder(o, "") // paid at once: no pay_url
		}
		if err := w.hub.SendUser(ctx, e.Room, x.User, room.MustEvent("giveaway.won", body)); err != nil {
			w.log.Warn("giveaway: telling a winner failed", "room", e.Room, "giveaway", g.ID, "err", err)
		}
	}
}
