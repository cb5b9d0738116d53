package cart

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testSecret = "0123456789abcdef-secret"

// receiver is a webhook endpoint that checks every request and fails the
// first failFirst attempts of each delivery.
type receiver struct {
	t         *testing.T
	failFirst int

	mu       sync.Mutex
	down     bool
	attempts map[string]int    // delivery id -> requests
	accepted map[string]string // delivery id -> idempotency key of the accepted one
	keys     map[string]string // delivery id -> the buyer's checkout key
	done     chan struct{}     // a delivery was accepted
}

func newReceiver(t *testing.T, failFirst int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, failFirst: failFirst, attempts: map[string]int{}, accepted: map[string]string{}, keys: map[string]string{}, done: make(chan struct{}, 100)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	mac := Sign(testSecret, body)
	if !hmac.Equal([]byte(req.Header.Get(HeaderSignature)), []byte(mac)) {
		r.t.Errorf("bad signature %q, want %q", req.Header.Get(HeaderSignature), mac)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := verifyWebhook([]byte(testSecret), req.Header, body, time.Now(), time.Minute); err != nil {
		r.t.Errorf("delivery fails the documented check: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct {
		Type           string `json:"type"`
		IdempotencyKey string `json:"idempotency_key"`
		Order          Order  `json:"order"`
	}
	if err := json.Unmarshal(body, &p); err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("bad request %s %s: %v", req.Method, body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.Header.Get(HeaderDelivery)
	if id != p.Order.ID || p.IdempotencyKey != p.Order.ID || p.Type != "order.created" {
		r.t.Errorf("delivery %q carries order %q, idempotency key %q, type %q", id, p.Order.ID, p.IdempotencyKey, p.Type)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[id]++
	if got, want := req.Header.Get(HeaderAttempt), strconv.Itoa(r.attempts[id]); got != want {
		// Claims count attempts, so a lease lost to a dead node is one too.
		if n, _ := strconv.Atoi(got); n < r.attempts[id] {
			r.t.Errorf("attempt header %s, but this is request %d", got, r.attempts[id])
		}
	}
	if r.down || r.attempts[id] <= r.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.accepted[id] = p.IdempotencyKey
	r.keys[id] = p.Order.Key
	w.WriteHeader(http.StatusNoContent)
	r.done <- struct{}{}
}

func (r *receiver) waitAccepted(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-r.done:
		case <-timeout:
			r.mu.Lock()
			t.Fatalf("%d of %d deliveries accepted in 10s; attempts %v", i, n, r.attempts)
			r.mu.Unlock()
		}
	}
}

func fastWebhooks(url string) WebhookConfig {
	c := WebhookConfig{OrdersURL: url, Secret: testSecret, RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond, PollInterval: 20 * time.Millisecond, Timeout: 2 * time.Second}
	c.SetDefaults()
	return c
}

// startOutbox runs an outbox until the test ends (or stop is called).
func startOutbox(t *testing.T, q Deliveries, cfg WebhookConfig, m *Metrics) (ob *Outbox, stop func()) {
	ob, err := NewOutbox(q, cfg, OutboxOptions{Metrics: m, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Outbox.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ob, stop
}

// buy stores an order with real time (the outbox runs on the wall clock).
func buy(t *testing.T, s Store, room, user, key string) Order {
	t.Helper()
	ctx := context.Background()
	if _, err := s.PutProduct(ctx, room, Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, room, ReserveParams{User: user, SKU: "tee", Qty: 1, Key: key}, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, err := s.Checkout(ctx, room, user, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r.Order
}

func TestOutboxRetriesUntilAccepted(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			rcv, srv := newReceiver(t, 2)
			m, _ := NewMetrics(prometheus.NewRegistry())
			ob, stop := startOutbox(t, s, fastWebhooks(srv.URL), m)
			var orders []Order
			for i, user := range []string{"ann", "bob", "cy"} {
				orders = append(orders, buy(t, s, "r"+strconv.Itoa(i%2), user, "pay-"+user))
				ob.Wake()
			}
			rcv.waitAccepted(t, 3)
			// The outbox records a delivery after the receiver has answered.
			eventually(t, func() bool { return testutil.ToFloat64(m.deliveries) == 3 })
			stop()
			if ds, _ := s.ClaimDeliveries(context.Background(), time.Now().Add(time.Hour), time.Minute, 10); len(ds) != 0 {
				t.Errorf("delivered orders are still queued: %+v", ds)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			for _, o := range orders {
				if rcv.accepted[o.ID] != o.ID || rcv.keys[o.ID] != o.Key || rcv.attempts[o.ID] != 3 {
					t.Errorf("order %s: accepted %q, key %q, attempts %d; want accepted on the 3rd attempt", o.ID, rcv.accepted[o.ID], rcv.keys[o.ID], rcv.attempts[o.ID])
				}
			}
			if got := testutil.ToFloat64(m.deliveries); got != 3 {
				t.Errorf("deliveries metric = %v, want 3", got)
			}
			if got := testutil.ToFloat64(m.failures.WithLabelValues("status")); got != 6 {
				t.Errorf("failures{status} = %v, want 6", got)
			}
		})
	}
}

// A node that claims deliveries and dies loses them to another node once
// the lease runs out.
func TestOutboxLeaseTakeover(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			rcv, srv := newReceiver(t, 0)
			o := buy(t, s, "r1", "ann", "pay")
			dead, err := s.ClaimDeliveries(context.Background(), time.Now(), 300*time.Millisecond, 10)
			if err != nil || len(dead) != 1 {
				t.Fatalf("claim = %+v, %v", dead, err)
			}
			start := time.Now()
			startOutbox(t, s, fastWebhooks(srv.URL), nil)
			rcv.waitAccepted(t, 1)
			if waited := time.Since(start); waited < 200*time.Millisecond {
				t.Errorf("delivered after %s, inside the dead node's lease", waited)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if rcv.attempts[o.ID] != 1 {
				t.Errorf("attempts = %d, want 1", rcv.attempts[o.ID])
			}
		})
	}
}

// Without orders_url, deliveries are dropped instead of piling up.
func TestOutboxWithoutURLDrops(t *testing.T) {
	s := newTestLocalStore(t, testConfig())
	buy(t, s, "r1", "ann", "pay")
	cfg := fastWebhooks("")
	cfg.Secret = ""
	startOutbox(t, s, cfg, nil)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.obMu.Lock()
		n := len(s.leases)
		s.obMu.Unlock()
		ds, _ := s.ClaimDeliveries(context.Background(), time.Now().Add(time.Hour), time.Minute, 10)
		if len(ds) == 0 && n == 0 {
			return
		}
		if len(ds) > 0 {
			s.RetryDelivery(context.Background(), ds[0], time.Now()) // give it back
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the delivery was not dropped")
}

var quietLog = slog.New(slog.DiscardHandler)

// eventually polls cond for up to 10s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 10s")
}

func TestBackoff(t *testing.T) {
	min, max := 100*time.Millisecond, 5*time.Second
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{7, 2500 * time.Millisecond, 5 * time.Second}, // 6.4s capped
		{100, 2500 * time.Millisecond, 5 * time.Second},
		{0, 2500 * time.Millisecond, 5 * time.Second},
	} {
		for _, r := range []float64{0, 0.5, 0.999} {
			got := backoff(tc.attempt, min, max, func() float64 { return r })
			if got < tc.lo || got > tc.hi {
				t.Errorf("backoff(%d) with jitter %v = %s, want %s..%s", tc.attempt, r, got, tc.lo, tc.hi)
			}
		}
	}
}

func TestSign(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style check value.
	got := Sign("key", []byte("The quick brown fox jumps over the lazy dog"))
	want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
