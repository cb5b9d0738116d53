package cart

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scriptedReceiver answers each POST with the next status of its script
// (the last one repeats), and counts what it accepted. A redirect points at
// /moved, which would accept anything: following it would look delivered.
type scriptedReceiver struct {
	t      *testing.T
	mu     sync.Mutex
	script []int
	posts  []http.Header // every POST to the webhook path
	moved  int           // requests that followed a redirect
	ok     map[string]int
	done   chan string
}

func newScriptedReceiver(t *testing.T, script ...int) (*scriptedReceiver, *httptest.Server) {
	r := &scriptedReceiver{t: t, script: script, ok: map[string]int{}, done: make(chan string, 100)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *scriptedReceiver) setScript(s ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script, r.posts = s, nil
}

func (r *scriptedReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/moved" {
		r.moved++
		w.WriteHeader(http.StatusOK)
		return
	}
	if req.Method != http.MethodPost {
		r.t.Errorf("%s %s: the webhook is only ever POSTed", req.Method, req.URL.Path)
	}
	r.posts = append(r.posts, req.Header.Clone())
	status := r.script[min(len(r.posts), len(r.script))-1]
	if status >= 300 && status < 400 {
		w.Header().Set("Location", "/moved")
	}
	if status == http.StatusOK {
		if err := verifyWebhook([]byte(testSecret), req.Header, body, time.Now(), time.Minute); err != nil {
			r.t.Errorf("delivery fails the documented check: %v", err)
			status = http.StatusUnauthorized
		} else {
			var p WebhookPayload
			if err := json.Unmarshal(body, &p); err != nil || p.IdempotencyKey != req.Header.Get(HeaderID) {
				r.t.Errorf("payload %s does not match webhook-id %s", body, req.Header.Get(HeaderID))
			}
			r.ok[req.Header.Get(HeaderID)]++
			r.done <- req.Header.Get(HeaderID)
		}
	}
	w.WriteHeader(status)
}

func (r *scriptedReceiver) snapshot() (posts int, moved int, ok map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	okc := map[string]int{}
	for k, v := range r.ok {
		okc[k] = v
	}
	return len(r.posts), r.moved, okc
}

func waitFor(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery accepted in 10s")
		return ""
	}
}

// queueEmpty: nothing is queued for delivery, now or later.
func queueEmpty(t *testing.T, s Store) {
	t.Helper()
	if ds, err := s.ClaimDeliveries(context.Background(), time.Now().Add(48*time.Hour), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("still queued: %+v, %v", ds, err)
	}
}

// A receiver that answers 301, then 500, then 200: the redirect is a failed
// attempt (not followed, not taken for a delivery), and the order is
// delivered exactly once, on the third attempt, with a valid signature.
func TestOutboxRedirectIsAFailedAttempt(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			rcv, srv := newScriptedReceiver(t, http.StatusMovedPermanently, http.StatusInternalServerError, http.StatusOK)
			m, _ := NewMetrics(prometheus.NewRegistry())
			_, stop := startOutbox(t, s, fastWebhooks(srv.URL), m)
			o := buy(t, s, "r1", "ann", "pay")
			if got := waitFor(t, rcv.done); got != o.ID {
				t.Fatalf("delivered %s, want %s", got, o.ID)
			}
			eventually(t, func() bool { return testutil.ToFloat64(m.deliveries) == 1 })
			stop()
			queueEmpty(t, s)
			posts, moved, ok := rcv.snapshot()
			if posts != 3 || moved != 0 || ok[o.ID] != 1 || len(ok) != 1 {
				t.Errorf("posts %d, redirects followed %d, accepted %v; want 3 posts, none followed, %s once", posts, moved, ok, o.ID)
			}
			if got := testutil.ToFloat64(m.failures.WithLabelValues("redirect")); got != 1 {
				t.Errorf("failures{redirect} = %v, want 1", got)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			for i, h := range rcv.posts {
				if h.Get(HeaderID) != o.ID || h.Get(HeaderAttempt) != strconv.Itoa(i+1) {
					t.Errorf("post %d: webhook-id %q attempt %q", i+1, h.Get(HeaderID), h.Get(HeaderAttempt))
				}
			}
		})
	}
}

// A receiver that always fails: after max_attempts the delivery is parked
// and listed, no longer attempted; a retry delivers it once the receiver is
// back, with a fresh count of attempts.
func TestOutboxParksAfterMaxAttempts(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			rcv, srv := newScriptedReceiver(t, http.StatusServiceUnavailable)
			cfg := fastWebhooks(srv.URL)
			cfg.MaxAttempts = 3
			ob, stop := startOutbox(t, s, cfg, nil)
			o := buy(t, s, "r1", "ann", "pay")
			ob.Wake()
			var page FailedPage
			eventually(t, func() bool {
				var err error
				page, err = ob.Failed(context.Background(), "", 10)
				return err == nil && len(page.Deliveries) == 1
			})
			f := page.Deliveries[0]
			if f.Room != "r1" || f.OrderID != o.ID || f.Attempts != 3 || f.LastError != "receiver answered 503" || time.Since(f.ParkedAt) > time.Minute {
				t.Errorf("parked %+v", f)
			}
			queueEmpty(t, s)
			// Parked means no more attempts (several poll intervals later).
			time.Sleep(10 * cfg.PollInterval)
			if posts, _, _ := rcv.snapshot(); posts != 3 {
				t.Errorf("%d attempts, want exactly max_attempts = 3", posts)
			}

			rcv.setScript(http.StatusInternalServerError, http.StatusOK)
			if err := ob.Retry(context.Background(), "r1", o.ID); err != nil {
				t.Fatal(err)
			}
			if got := waitFor(t, rcv.done); got != o.ID {
				t.Fatalf("delivered %s, want %s", got, o.ID)
			}
			eventually(t, func() bool {
				p, err := ob.Failed(context.Background(), "", 10)
				return err == nil && len(p.Deliveries) == 0
			})
			stop()
			posts, _, ok := rcv.snapshot()
			if posts != 2 || ok[o.ID] != 1 {
				t.Errorf("after retry: %d posts, accepted %v; want 2 posts and one delivery", posts, ok)
			}
			rcv.mu.Lock()
			if a := rcv.posts[0].Get(HeaderAttempt); a != "1" {
				t.Errorf("first attempt after retry is numbered %s, want 1", a)
			}
			rcv.mu.Unlock()
			var ce *Error
			if err := ob.Retry(context.Background(), "r1", o.ID); !errors.As(err, &ce) || ce.Code != CodeNotFound {
				t.Errorf("retrying a delivered order = %v, want not_found", err)
			}
		})
	}
}

// Parking, listing and requeueing, the same on both stores.
func TestParkedDeliveriesConformance(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			s := st.open(t, testConfig())
			var orders []Order
			for _, b := range []struct{ room, user string }{{"r2", "ann"}, {"r1", "bob"}, {"r1", "cy"}, {"r10", "dee"}} {
				orders = append(orders, buy(t, s, b.room, b.user, "k-"+b.user))
			}
			now := time.Now()
			ds, err := s.ClaimDeliveries(ctx, now, time.Minute, 10)
			if err != nil || len(ds) != 4 {
				t.Fatalf("claim = %d, %v", len(ds), err)
			}
			byID := map[string]Delivery{}
			for _, d := range ds {
				byID[d.OrderID] = d
			}
			// Park all but bob's, which is delivered before its park lands.
			if err := s.CompleteDelivery(ctx, byID[orders[1].ID]); err != nil {
				t.Fatal(err)
			}
			for _, o := range orders {
				if err := s.ParkDelivery(ctx, byID[o.ID], "receiver answered 500", now); err != nil {
					t.Fatal(err)
				}
			}
			// By room, then order: r1 (cy), r10 (dee), r2 (ann).
			want := []Order{orders[2], orders[3], orders[0]}
			var got []FailedDelivery
			cursor := ""
			for range 10 {
				p, err := s.FailedDeliveries(ctx, cursor, 1)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Deliveries...)
				if cursor = p.Next; cursor == "" {
					break
				}
			}
			if len(got) != len(want) {
				t.Fatalf("listed %+v, want %d", got, len(want))
			}
			for i, o := range want {
				g := got[i]
				if g.Room != o.Room || g.OrderID != o.ID || g.Attempts != 1 || g.LastError != "receiver answered 500" || !g.ParkedAt.Equal(truncMS(now)) {
					t.Errorf("listed[%d] = %+v, want %s/%s", i, g, o.Room, o.ID)
				}
			}
			if all, _ := s.FailedDeliveries(ctx, "", 0); len(all.Deliveries) != 3 || all.Next != "" {
				t.Errorf("one page of all: %+v", all)
			}
			// Parked is off the queue, even when due.
			if ds, _ := s.ClaimDeliveries(ctx, now.Add(48*time.Hour), time.Minute, 10); len(ds) != 0 {
				t.Errorf("parked deliveries claimed: %+v", ds)
			}
			// Requeue: due now, attempts from 1, gone from the list.
			if err := s.RequeueDelivery(ctx, "r10", orders[3].ID, now); err != nil {
				t.Fatal(err)
			}
			ds, err = s.ClaimDeliveries(ctx, now, time.Minute, 10)
			if err != nil || len(ds) != 1 || ds[0].OrderID != orders[3].ID || ds[0].Attempt != 1 || len(ds[0].Order) == 0 {
				t.Fatalf("claim after requeue = %+v, %v", ds, err)
			}
			if p, _ := s.FailedDeliveries(ctx, "", 10); len(p.Deliveries) != 2 {
				t.Errorf("after requeue listed %+v", p.Deliveries)
			}
			var ce *Error
			for _, tc := range []struct{ room, id string }{{"r10", orders[3].ID}, {"r1", orders[1].ID}, {"r9", orders[2].ID}, {"r1", "o_000000000000"}} {
				if err := s.RequeueDelivery(ctx, tc.room, tc.id, now); !errors.As(err, &ce) || ce.Code != CodeNotFound {
					t.Errorf("requeue %s/%s = %v, want not_found", tc.room, tc.id, err)
				}
			}
			for _, c := range []string{"nope", "r1/x", "R1/" + orders[2].ID, "/"} {
				if _, err := s.FailedDeliveries(ctx, c, 10); !errors.As(err, &ce) || ce.Code != CodeBadRequest {
					t.Errorf("cursor %q: %v, want bad_request", c, err)
				}
			}
		})
	}
}

func TestRetrySpanDefaults(t *testing.T) {
	var c WebhookConfig
	c.SetDefaults()
	lo, hi := c.RetrySpan()
	// docs/webhooks.md and configs/liveroom.yaml say: parked 6 to 12 hours
	// after the first attempt.
	if lo < 6*time.Hour || lo > 6*time.Hour+10*time.Minute || hi < 12*time.Hour || hi > 12*time.Hour+10*time.Minute {
		t.Errorf("RetrySpan = %s..%s, documented as about 6h..12h", lo, hi)
	}
}
