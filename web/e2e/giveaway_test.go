package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestBrowserGiveaway: the host starts a product giveaway in the studio, a
// signed-in viewer on a phone-sized page enters, wins (the only entrant),
// and the verify page recomputes the draw in the browser and finds the
// viewer's entry; with an entry that is not in the list it refuses.
func TestBrowserGiveaway(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	srv := startServer(t, artifacts)
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Giveaway room"}, http.StatusCreated, nil)
	srv.do(t, http.MethodPut, "/api/v1/rooms/"+room+"/products/gw-tee",
		map[string]any{"title": "Prize tee", "price_cents": 2500, "currency": "EUR", "stock": 5}, 0, nil)
	host := mint(t, srv, "host-1", "Maya", "host")
	viewer := mint(t, srv, "viewer-1", "Ana", "viewer")

	type check struct {
		Text string `json:"text"`
		OK   bool   `json:"ok"`
	}
	type verdict struct {
		Verified string  `json:"verified"`
		Verdict  string  `json:"verdict"`
		Checks   []check `json:"checks"`
	}
	var res struct {
		OK           bool     `json:"ok"`
		Step         string   `json:"step"`
		Error        string   `json:"error"`
		Logs         []string `json:"logs"`
		Prize        string   `json:"prize"`
		Winners      string   `json:"winners"`
		Entry        string   `json:"entry"`
		ResultText   string   `json:"resultText"`
		Won          bool     `json:"won"`
		StudioResult string   `json:"studioResult"`
		Verify       verdict  `json:"verify"`
		Stranger     verdict  `json:"stranger"`
	}
	runScript(t, node, chromium, &res, "giveaway.mjs", "--base", srv.base, "--room", room, "--host", host, "--viewer", viewer, "--sku", "gw-tee", "--out", artifacts)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	if res.Winners != "1 to win" { // giveaway.started's winner_count
		t.Errorf("card shows %q, want \"1 to win\"", res.Winners)
	}
	if !strings.HasPrefix(res.Entry, "e_") || len(res.Entry) != 18 {
		t.Errorf("entry shown %q, want e_ and 16 hex digits", res.Entry)
	}
	if !res.Won || !strings.Contains(res.ResultText, "Ana") || !strings.Contains(res.StudioResult, res.Entry) {
		t.Errorf("result: viewer %q (won %v), studio %q; want Ana winning with %s", res.ResultText, res.Won, res.StudioResult, res.Entry)
	}
	if res.Verify.Verified != "true" || len(res.Verify.Checks) < 5 {
		t.Errorf("verify page: %q with %d checks %+v; want every check passed", res.Verify.Verdict, len(res.Verify.Checks), res.Verify.Checks)
	}
	if !slices.ContainsFunc(res.Verify.Checks, func(c check) bool { return c.OK && strings.Contains(c.Text, res.Entry) }) {
		t.Errorf("verify page checks %+v: none finds the viewer's entry %s", res.Verify.Checks, res.Entry)
	}
	if res.Stranger.Verified != "false" || !slices.ContainsFunc(res.Stranger.Checks, func(c check) bool { return !c.OK && strings.Contains(c.Text, "e_0000000000000000") }) {
		t.Errorf("verify with an unlisted entry: %q %+v; want a failed check naming it", res.Stranger.Verdict, res.Stranger.Checks)
	}
	// The prize became a 0-price order in the room.
	var orders struct {
		Orders []struct {
			User       string `json:"user"`
			TotalCents int64  `json:"total_cents"`
		} `json:"orders"`
	}
	srv.do(t, http.MethodGet, "/api/v1/rooms/"+room+"/orders", nil, 0, &orders)
	if len(orders.Orders) != 1 || orders.Orders[0].User != "viewer-1" || orders.Orders[0].TotalCents != 0 {
		t.Errorf("orders %+v, want one 0-price order for viewer-1", orders.Orders)
	}
}
