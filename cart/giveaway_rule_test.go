package cart

import (
	"context"
	"testing"

	"liveroom/chat"
	"liveroom/room"
	"liveroom/room/roomtest"
)

// TestGiveawayRulesWS: the entry rules through the real parts. "chatted":
// a viewer who has not posted is refused (not_allowed) until a chat
// message of theirs goes out through chat's OnPost hook; "bought": refused
// until the viewer checks out in the room. A refusal changes nothing.
func TestGiveawayRulesWS(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t, fastConfig())
			var svc *Service
			hc := room.DefaultHubConfig()
			hc.MaxConnsPerIP = 0
			srv := roomtest.New(t, roomtest.Options{Hub: &hc, Setup: func(h *room.Hub, s *roomtest.Server) error {
				var err error
				if svc, err = NewService(store, fastConfig(), ServiceOptions{Log: quietLog}); err != nil {
					return err
				}
				AttachWS(h, svc, quietLog)
				cc := chat.DefaultConfig()
				cc.HoldSelling = false
				_, err = chat.New(cc, chat.Deps{Hub: h, Rooms: s.Rooms, Metrics: s.Registry,
					OnPost: func(ctx context.Context, roomID, userID string) { svc.NoteChat(ctx, roomID, userID) }})
				return err
			}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = svc.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			if _, err := store.PutProduct(ctx, "demo", Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 5}); err != nil {
				t.Fatal(err)
			}
			host := srv.Dial(t, "demo", srv.Token(t, "host", room.RoleHost, "demo"))
			defer host.Close()
			v := srv.Dial(t, "demo", srv.Token(t, "ana", room.RoleViewer, "demo"))
			defer v.Close()

			for _, rule := range []string{"chatted", "bought"} {
				host.Send(t, map[string]any{"type": "giveaway.start", "prize": map[string]any{"text": "a hug"}, "entry_s": 3, "rule": rule})
				id := roomtest.Field[string](t, host.Expect(t, "giveaway.started"), "giveaway_id")
				v.Send(t, map[string]any{"type": "giveaway.enter", "ref": "no-" + rule, "giveaway_id": id})
				if ev := v.Next(t, byRef("no-"+rule)); ev.Type != "error" || roomtest.Field[string](t, ev, "code") != "not_allowed" {
					t.Fatalf("rule %s before qualifying: got %s, want error not_allowed", rule, ev.AppendJSON(nil))
				}
				if rule == "chatted" {
					v.Send(t, map[string]any{"type": "chat.send", "text": "hello"})
					v.Expect(t, "chat.message")
				} else {
					v.Send(t, map[string]any{"type": "cart.add", "ref": "add", "sku": "tee", "key": "k1"})
					v.Next(t, byRef("add"))
					v.Send(t, map[string]any{"type": "cart.checkout", "ref": "co", "key": "c1"})
					if ev := v.Next(t, byRef("co")); ev.Type != "order.confirmed" {
						t.Fatalf("checkout: %s", ev.AppendJSON(nil))
					}
				}
				v.Send(t, map[string]any{"type": "giveaway.enter", "ref": "yes-" + rule, "giveaway_id": id})
				if ev := v.Next(t, byRef("yes-"+rule)); ev.Type != "giveaway.entered" {
					t.Fatalf("rule %s after qualifying: got %s, want giveaway.entered", rule, ev.AppendJSON(nil))
				}
				ended := host.Expect(t, "giveaway.ended")
				if n := roomtest.Field[float64](t, ended, "entrants"); n != 1 {
					t.Fatalf("rule %s: %v entrants, want 1 (the refusal added none)", rule, n)
				}
			}
		})
	}
}
