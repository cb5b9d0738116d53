package cart

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"liveroom/room"
)

// Webhook headers. The webhook-* ones are the Standard Webhooks form
// (https://www.standardwebhooks.com): the signature covers the id and the
// timestamp as well as the body, so a receiver that rejects old timestamps
// and ids it has seen cannot be fed a captured delivery again.
const (
	HeaderID        = "webhook-id"        // the order id: the same on every attempt
	HeaderTimestamp = "webhook-timestamp" // unix seconds of this attempt
	HeaderSigV1     = "webhook-signature" // v1,<base64 HMAC-SHA256 of id.timestamp.body>

	// Deprecated: HeaderSignature signs the body only; it is sent for one
	// more release for receivers that still check it.
	HeaderSignature = "X-Liveroom-Signature" // sha256=<hex HMAC-SHA256 of the body>
	HeaderDelivery  = "X-Liveroom-Delivery"  // the order id: the same on every retry
	HeaderAttempt   = "X-Liveroom-Attempt"   // 1, 2, ...
)

// WebhookPayload is the body POSTed for each order. IdempotencyKey is the
// order id, the same on every retry: a receiver that has seen it before
// should answer 2xx and do nothing. Order.Key is the buyer's checkout key.
type WebhookPayload struct {
	Type           string          `json:"type"` // "order.created", "order.paid", "order.fulfilled", "order.cancelled"
	IdempotencyKey string          `json:"idempotency_key"`
	Order          json.RawMessage `json:"order"`
}

// Sign returns the deprecated X-Liveroom-Signature value for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SignV1 returns the webhook-signature value: "v1," and the base64
// HMAC-SHA256 of "id.timestamp.body" under the secret's key (the decoded
// bytes of a whsec_<base64> secret, else the secret's bytes).
func SignV1(secret, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, webhookKey(secret))
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func webhookKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return k
		}
	}
	return []byte(secret)
}

// FailedDelivery is a parked delivery: every attempt failed.
type FailedDelivery struct {
	Room      string    `json:"room"`
	OrderID   string    `json:"order_id"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	ParkedAt  time.Time `json:"parked_at"`
}

// FailedPage is one page of FailedDeliveries.
type FailedPage struct {
	Deliveries []FailedDelivery `json:"deliveries"`
	Next       string           `json:"next,omitempty"`
}

// parseFailedCursor reads the opaque cursor of a FailedPage, "room/order id";
// it returns the store key room\x00order id.
func parseFailedCursor(c string) (string, error) {
	room, oid, ok := strings.Cut(c, "/")
	if !ok || validRoom(room) != nil || !orderIDPattern.MatchString(oid) {
		return "", fieldErr("cursor", "is not a cursor of this list")
	}
	return room + "\x00" + oid, nil
}

func failedCursor(room, oid string) string { return room + "/" + oid }

// orderIDPattern matches a delivery id: an order id, or order id.state for
// a transition's event.
var orderIDPattern = regexp.MustCompile(`^o_[0-9a-f]{12,40}(\.(paid|fulfilled|cancelled))?$`)

const maxFailedPage = 500

func failedPageLimit(limit int) int {
	if limit <= 0 || limit > maxFailedPage {
		return 100
	}
	return limit
}

// Outbox delivers stored orders to webhooks.orders_url, at least once: a
// delivery leaves the queue only after a 2xx answer; failures (a redirect
// too: it is never followed) are retried with capped exponential backoff and
// jitter, up to webhooks.max_attempts, after which the delivery is parked
// (FailedDeliveries) until an admin retries it. The queue is durable, so
// deliveries resume after a restart, and claims are leases, so in a cluster
// another node takes over a dead node's deliveries.
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
	Client  *http.Client     // default: a client with webhooks.timeout; its redirects are never followed
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
	// A 3xx is an answer, not a delivery: following it would turn the POST
	// into a bodiless GET whose 2xx marks the order delivered.
	client := *opt.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opt.Client = &client
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
	if u, err := url.Parse(o.cfg.OrdersURL); err == nil && o.cfg.OrdersURL != "" {
		lo, hi := o.cfg.RetrySpan()
		o.log.Info("webhook outbox delivering", "host", u.Host, "max_attempts", o.cfg.MaxAttempts,
			"parked_after", lo.Round(time.Minute).String()+"-"+hi.Round(time.Minute).String())
	}
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
	if d.Attempt >= o.cfg.MaxAttempts {
		o.log.Error("webhook delivery parked: every attempt failed; retry it with POST /api/v1/webhooks/failed/{room}/{order}/retry",
			"room", d.Room, "order", d.OrderID, "attempts", d.Attempt, "err", err)
		o.m.deliveryFailed("parked")
		if err := o.q.ParkDelivery(rec, d, err.Error(), o.now()); err != nil {
			o.log.Warn("webhook outbox: parking failed", "order", d.OrderID, "err", err)
		}
		return
	}
	wait := backoff(d.Attempt, o.cfg.RetryMin, o.cfg.RetryMax, rand.Float64)
	o.log.Warn("webhook delivery failed", "room", d.Room, "order", d.OrderID, "attempt", d.Attempt, "of", o.cfg.MaxAttempts, "retry_in", wait, "err", err)
	if err := o.q.RetryDelivery(rec, d, o.now().Add(wait)); err != nil {
		o.log.Warn("webhook outbox: scheduling retry failed", "order", d.OrderID, "err", err)
	}
}

// Failed lists the parked deliveries (the admin API's
// GET /api/v1/webhooks/failed).
func (o *Outbox) Failed(ctx context.Context, cursor string, limit int) (FailedPage, error) {
	p, err := o.q.FailedDeliveries(ctx, cursor, limit)
	if p.Deliveries == nil {
		p.Deliveries = []FailedDelivery{}
	}
	return p, err
}

// Retry puts a parked delivery back on the queue with a fresh count of
// attempts, and looks for it at once.
func (o *Outbox) Retry(ctx context.Context, room, orderID string) error {
	if err := validRoom(room); err != nil {
		return err
	}
	if !orderIDPattern.MatchString(orderID) {
		return errf(CodeNotFound, "no parked delivery of order %q", orderID)
	}
	if err := o.q.RequeueDelivery(ctx, room, orderID, o.now()); err != nil {
		return err
	}
	o.log.Info("webhook delivery requeued by an admin", "room", room, "order", orderID)
	o.Wake()
	return nil
}

type statusError struct {
	code     int
	location string // of a redirect
}

func (e statusError) Error() string {
	if e.code >= 300 && e.code < 400 {
		return fmt.Sprintf("receiver answered %d (a redirect to %q, not followed: set webhooks.orders_url to the final URL)", e.code, e.location)
	}
	return "receiver answered " + strconv.Itoa(e.code)
}

func (o *Outbox) post(ctx context.Context, d Delivery) error {
	_, event := splitDelivery(d.OrderID) // order.created, or a transition's id.state
	body, err := json.Marshal(WebhookPayload{Type: event, IdempotencyKey: d.OrderID, Order: json.RawMessage(d.Order)})
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
	ts := o.now().Unix()
	req.Header.Set(HeaderID, d.OrderID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSigV1, SignV1(o.cfg.Secret, d.OrderID, ts, body))
	req.Header.Set(HeaderSignature, Sign(o.cfg.Secret, body))
	req.Header.Set(HeaderDelivery, d.OrderID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempt))
	resp, err := o.client.Do(req)
	if err != nil {
		o.m.deliveryFailed("network")
		var ue *url.Error
		if errors.As(err, &ue) {
			// The error is logged and kept on a parked delivery: the
			// receiver's URL may carry a token in its query.
			ue.URL = room.RedactURL(ue.URL)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		o.m.deliveryFailed("redirect")
		return statusError{resp.StatusCode, room.RedactURL(resp.Header.Get("Location"))}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		o.m.deliveryFailed("status")
		return statusError{code: resp.StatusCode}
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
