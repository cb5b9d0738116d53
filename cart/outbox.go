package cart

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Webhook headers.
const (
	HeaderSignature = "X-Liveroom-Signature" // sha256=<hex HMAC-SHA256 of the body>
	HeaderDelivery  = "X-Liveroom-Delivery"  // the order id: the same on every retry
	HeaderAttempt   = "X-Liveroom-Attempt"   // 1, 2, ...
)

// WebhookPayload is the body POSTed for each order. IdempotencyKey is the
// order id, the same on every retry: a receiver that has seen it before
// should answer 2xx and do nothing. Order.Key is the buyer's checkout key.
type WebhookPayload struct {
	Type           string          `json:"type"` // "order.created"
	IdempotencyKey string          `json:"idempotency_key"`
	Order          json.RawMessage `json:"order"`
}

// Sign returns the X-Liveroom-Signature value for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Outbox delivers stored orders to webhooks.orders_url, at least once: a
// delivery leaves the queue only after a 2xx answer; failures are retried
// with capped exponential backoff and jitter, forever; the queue is durable,
// so deliveries resume after a restart, and claims are leases, so in a
// cluster another node takes over a dead node's deliveries.
//
// Without an orders_url the outbox drops deliveries (the orders stay listed
// in the admin API).
type Outbox struct {
	q      Deliveries
	cfg    WebhookConfig
	client *http.Client
	m      *Metrics
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}
}

// OutboxOptions are the optional parts of an Outbox.
type OutboxOptions struct {
	Metrics *Metrics
	Log     *slog.Logger
	Client  *http.Client     // default: a client with webhooks.timeout
	Now     func() time.Time // default time.Now
}

// NewOutbox delivers from q (the Store).
func NewOutbox(q Deliveries, cfg WebhookConfig, opt OutboxOptions) (*Outbox, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Outbox{q: q, cfg: cfg, client: opt.Client, m: opt.Metrics, log: opt.Log, now: opt.Now, wake: make(chan struct{}, 1)}, nil
}

// Wake makes Run look for deliveries now (call it after a checkout).
func (o *Outbox) Wake() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// lease outlasts one attempt (its timeout) plus the time to record it.
func (o *Outbox) lease() time.Duration { return 2*o.cfg.Timeout + 5*time.Second }

// Run delivers until ctx ends. It returns nil on ctx's end; attempts in
// flight are cut short and stay due.
func (o *Outbox) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.wake:
		case <-timer.C:
		}
		// A full batch means more may be due: keep going before sleeping.
		for ctx.Err() == nil {
			if o.deliverDue(ctx) < o.cfg.Concurrency {
				break
			}
		}
		timer.Reset(o.cfg.PollInterval)
	}
}

// deliverDue claims up to Concurrency due deliveries and attempts them in
// parallel; it returns how many it claimed.
func (o *Outbox) deliverDue(ctx context.Context) int {
	ds, err := o.q.ClaimDeliveries(ctx, o.now(), o.lease(), o.cfg.Concurrency)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn("webhook outbox: claim failed", "err", err)
			o.m.deliveryFailed("store")
		}
		return 0
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { o.deliver(ctx, d) })
	}
	wg.Wait()
	return len(ds)
}

func (o *Outbox) deliver(ctx context.Context, d Delivery) {
	// Recording the outcome must not be lost to shutdown.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if o.cfg.OrdersURL == "" {
		if err := o.q.CompleteDelivery(rec, d); err != nil {
			o.log.Warn("webhook outbox: drop failed", "order", d.OrderID, "err", err)
		}
		return
	}
	err := o.post(ctx, d)
	if err == nil {
		o.m.delivered()
		if err := o.q.CompleteDelivery(rec, d); err != nil {
			// The receiver has it; a later claim re-sends it (at least once).
			o.log.Warn("webhook outbox: recording delivery failed", "order", d.OrderID, "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and it is retried
	}
	wait := backoff(d.Attempt, o.cfg.RetryMin, o.cfg.RetryMax, rand.Float64)
	o.log.Warn("webhook delivery failed", "room", d.Room, "order", d.OrderID, "attempt", d.Attempt, "retry_in", wait, "err", err)
	if err := o.q.RetryDelivery(rec, d, o.now().Add(wait)); err != nil {
		o.log.Warn("webhook outbox: scheduling retry failed", "order", d.OrderID, "err", err)
	}
}

type statusError int

func (e statusError) Error() string { return "receiver answered " + strconv.Itoa(int(e)) }

func (o *Outbox) post(ctx context.Context, d Delivery) error {
	body, err := json.Marshal(WebhookPayload{Type: "order.created", IdempotencyKey: d.OrderID, Order: json.RawMessage(d.Order)})
	if err != nil {
		o.m.deliveryFailed("store")
		return fmt.Errorf("encode payload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.cfg.OrdersURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "liveroom-webhook/1")
	req.Header.Set(HeaderSignature, Sign(o.cfg.Secret, body))
	req.Header.Set(HeaderDelivery, d.OrderID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempt))
	resp, err := o.client.Do(req)
	if err != nil {
		o.m.deliveryFailed("network")
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		o.m.deliveryFailed("status")
		return statusError(resp.StatusCode)
	}
	return nil
}

// backoff is the wait before attempt+1: min·2^(attempt−1), capped at max,
// then jittered into [d/2, d] so that a receiver coming back is not hit by
// every retry at once.
func backoff(attempt int, min, max time.Duration, rnd func() float64) time.Duration {
	d := max
	if attempt >= 1 && attempt < 40 {
		if x := min << (attempt - 1); x > 0 && x < max {
			d = x
		}
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}
