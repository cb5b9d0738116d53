package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDrain(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	d := NewDrain("node-a")
	h := d.Wrap(ok)
	cases := []struct {
		method, path string
		draining     int // status while draining
	}{
		{"GET", "/readyz", http.StatusServiceUnavailable},
		{"GET", "/healthz", http.StatusOK},
		{"POST", "/whep/shop", http.StatusServiceUnavailable},
		{"POST", "/whip/shop", http.StatusServiceUnavailable},
		{"GET", "/ws/shop", http.StatusServiceUnavailable},
		{"PATCH", "/whep/shop/s1", http.StatusOK},
		{"DELETE", "/whep/shop/s1", http.StatusOK},
		{"DELETE", "/whip/shop/s1", http.StatusOK},
		{"GET", "/r/shop", http.StatusOK},
		{"GET", "/api/v1/rooms", http.StatusOK},
	}
	for _, draining := range []bool{false, true} {
		if draining {
			d.Start()
		}
		for _, c := range cases {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
			want := http.StatusOK
			if draining {
				want = c.draining
			}
			if rec.Code != want {
				t.Errorf("draining=%v %s %s: got %d, want %d", draining, c.method, c.path, rec.Code, want)
			}
			if got := rec.Header().Get(NodeHeader); got != "node-a" {
				t.Errorf("%s %s: %s = %q, want node-a", c.method, c.path, NodeHeader, got)
			}
			if rec.Code == http.StatusServiceUnavailable {
				if rec.Header().Get("Retry-After") == "" {
					t.Errorf("%s %s: 503 without Retry-After", c.method, c.path)
				}
				if !strings.Contains(rec.Body.String(), `"code":"draining"`) {
					t.Errorf("%s %s: body %s, want a draining JSON error", c.method, c.path, rec.Body.String())
				}
			}
		}
	}
}
