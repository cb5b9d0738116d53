package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"liveroom/cart"
)

// adminJSONRoutes are the admin API's routes that take a JSON body.
var adminJSONRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/rooms"},
	{"PATCH", "/api/v1/rooms/fz"},
	{"POST", "/api/v1/tokens"},
	{"PUT", "/api/v1/rooms/fz/products/tee"},
}

// FuzzAdminJSON throws arbitrary bodies, with the admin key, at every admin
// route that takes JSON: the answer is a 2xx with a JSON body or a 4xx JSON
// error, never a panic or a 5xx, and a refused request changes nothing.
func FuzzAdminJSON(f *testing.F) {
	store, err := cart.OpenLocal(f.TempDir(), cart.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	// OnSource: a room's RTSP source is recorded, never pulled.
	n := newTestNode(f, func(d *Deps) { d.Catalog, d.OnSource = store, func(string) {} })
	n.createRoom("fz", false)
	if _, err := store.PutProduct(context.Background(), "fz", cart.Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 5}); err != nil {
		f.Fatal(err)
	}
	h := n.srv.Config.Handler
	call := func(method, path, body string) (int, []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	// state is everything the routes above may change.
	state := func() string {
		var b strings.Builder
		for _, p := range []string{"/api/v1/rooms", "/api/v1/rooms/fz", "/api/v1/rooms/fz/products"} {
			_, body := call("GET", p, "")
			b.Write(body)
		}
		return b.String()
	}
	f.Add(uint8(0), `{"id":"shop1","title":"Shop"}`)
	f.Add(uint8(1), `{"title":"New title","private":true}`)
	f.Add(uint8(2), `{"sub":"u1","role":"moderator","room":"fz","ttl":"1h"}`)
	f.Add(uint8(3), `{"title":"Tee","price_cents":100,"currency":"USD","stock":5}`)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := adminJSONRoutes[int(route)%len(adminJSONRoutes)]
		before := state()
		code, resp := call(r.method, r.path, body)
		switch {
		case code >= 200 && code < 300:
			if !json.Valid(resp) {
				t.Fatalf("%s %s %q: %d with a body that is not JSON: %q", r.method, r.path, body, code, resp)
			}
			if r.path == "/api/v1/rooms" { // keep the node's state small
				var created struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(resp, &created)
				if c, b := call("DELETE", "/api/v1/rooms/"+created.ID, ""); c != http.StatusNoContent && c != http.StatusOK {
					t.Fatalf("deleting created room %q: %d %s", created.ID, c, b)
				}
			}
		case code >= 400 && code < 500:
			var e apiError
			if err := json.Unmarshal(resp, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s %q: %d with a body that is not a JSON error: %q", r.method, r.path, body, code, resp)
			}
			if after := state(); after != before {
				t.Fatalf("%s %s %q was refused (%d %s) but changed the state", r.method, r.path, body, code, bytes.TrimSpace(resp))
			}
		default:
			t.Fatalf("%s %s %q: status %d %s", r.method, r.path, body, code, resp)
		}
	})
}
