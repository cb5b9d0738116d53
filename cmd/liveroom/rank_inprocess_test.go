package main

import (
	"context"
	"testing"
	"time"

	"liveroom/room/roomtest"
)

// Rank across whole nodes: a moderator on a bans and times out a merchant
// whose host role nobody knew yet; the merchant then comes in on b as
// host anyway, chats and starts a sale, and from then on (the role now
// known to every node) the moderator's ban is refused, as are bans of the
// admin and of the stream-key host.
func TestInProcessRank(t *testing.T) {
	inProcessTest(t, "rank", 30*time.Second, func(t *testing.T, _ context.Context, nodes []*inNode, _ *roomtest.RedisServer) {
		a, b := nodes[0].p, nodes[1].p
		if status, body := adminDo(t, "PUT", a.Base+"/api/v1/rooms/rank/products/bag", map[string]any{"title": "Bag", "price_cents": 4900, "currency": "EUR", "stock": 10}); status != 200 {
			t.Fatalf("put product: %d %s", status, body)
		}
		mod := dialWS(t, a.Base, "rank", mintToken(t, a.Base, "mod", "moderator", "rank"))
		if mod.await("welcome", 5*time.Second) == nil {
			t.Fatal("moderator: no welcome")
		}
		_ = mod.send(map[string]any{"type": "mod.ban", "user_id": "merchant"})
		if mod.await("user.banned", 5*time.Second) == nil {
			t.Fatal("ban of an unknown user: no user.banned")
		}
		_ = mod.send(map[string]any{"type": "mod.timeout", "user_id": "merchant", "seconds": 600})
		if mod.await("user.timeout", 5*time.Second) == nil {
			t.Fatal("timeout of an unknown user: no user.timeout")
		}

		host := dialWS(t, b.Base, "rank", mintToken(t, a.Base, "merchant", "host", "rank"))
		if host.await("welcome", 5*time.Second) == nil {
			t.Fatal("host: no welcome (refused by a moderator's ban?)")
		}
		_ = host.send(map[string]any{"type": "chat.send", "text": "welcome to the show"})
		if m := host.await("chat.message", 5*time.Second); m == nil {
			t.Fatal("host: their message was not posted")
		}
		_ = host.send(map[string]any{"type": "sale.start", "sku": "bag", "price_cents": 2900, "quantity": 5, "per_user_limit": 1, "starts_in_s": 0, "duration_s": 600})
		if host.await("sale.started", 5*time.Second) == nil {
			t.Fatal("host: no sale.started")
		}

		for _, who := range []string{"merchant", "admin", "host:rank"} {
			_ = mod.send(map[string]any{"type": "mod.ban", "user_id": who, "ref": who})
			ev := mod.await("error", 5*time.Second)
			if ev == nil || ev["code"] != "forbidden" || ev["ref"] != who {
				t.Fatalf("moderator bans %s: got %v, want a forbidden error", who, ev)
			}
		}
	}, "a", "b")
}
