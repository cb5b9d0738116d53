package cart

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the `cart:` section.
type Config struct {
	// Hold is how long a reservation keeps its units before they return to
	// stock.
	Hold time.Duration `yaml:"hold"`
	// KeyRetention is how long the idempotency keys of a checkout (its
	// `cart.checkout` key and the `cart.add` keys of the reservations it
	// bought) are remembered; MaxKeys bounds how many one buyer keeps per
	// room, the oldest evicted first. A reservation that ends without an
	// order (released, expired) is forgotten at once, its key with it.
	KeyRetention time.Duration `yaml:"key_retention"`
	MaxKeys      int           `yaml:"max_keys"`
	// MaxHolds and MaxHeldUnits cap one buyer's held reservations and the
	// units in them, per room; ListPriceLimit caps the units of one
	// product a buyer may hold at list price (a sale has its own
	// per_user_limit). A cart.add past a cap is limit_reached.
	MaxHolds       int `yaml:"max_holds"`
	MaxHeldUnits   int `yaml:"max_held_units"`
	ListPriceLimit int `yaml:"list_price_limit"`
	// SweepInterval is how often due reservations are expired and ended
	// sales settled.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// StockInterval is the shortest gap between two `sale.stock` updates of
	// one sale (sold out is sent at once).
	StockInterval time.Duration `yaml:"stock_interval"`
	// RedisPrefix starts every Redis key (cluster mode), so that several
	// deployments can share one Redis.
	RedisPrefix string `yaml:"redis_prefix"`
	// PayWithin is how long a new order awaits payment before it lapses
	// (cancelled, its units back on sale); 0 = orders are paid at once (no
	// payment step). A sale may set its own (`pay_within_s`). docs/orders.md.
	PayWithin time.Duration `yaml:"pay_within"`
	// CheckoutURL is where a buyer pays an awaiting order: a URL template
	// with {order_id}, signed with PaySecret (pay_url in order.confirmed).
	// A room may set its own. Empty = no pay_url.
	CheckoutURL string `yaml:"checkout_url"`
	PaySecret   string `yaml:"pay_secret"`
}

// Defaults of Config.
const (
	DefaultHold          = 2 * time.Minute
	DefaultKeyRetention  = 24 * time.Hour
	DefaultSweepInterval = time.Second
	DefaultStockInterval = 250 * time.Millisecond
	DefaultRedisPrefix   = "lr:"
	DefaultMaxKeys       = 100
	DefaultMaxHolds      = 20
	DefaultMaxHeldUnits  = 100
	DefaultListLimit     = 10
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Hold == 0 {
		c.Hold = DefaultHold
	}
	if c.KeyRetention == 0 {
		c.KeyRetention = DefaultKeyRetention
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.StockInterval == 0 {
		c.StockInterval = DefaultStockInterval
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = DefaultRedisPrefix
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.MaxHolds == 0 {
		c.MaxHolds = DefaultMaxHolds
	}
	if c.MaxHeldUnits == 0 {
		c.MaxHeldUnits = DefaultMaxHeldUnits
	}
	if c.ListPriceLimit == 0 {
		c.ListPriceLimit = DefaultListLimit
	}
}

// Validate reports the first invalid field, named by its YAML key.
func (c Config) Validate() error {
	if c.Hold < time.Second || c.Hold > time.Hour {
		return fmt.Errorf("cart.hold: must be 1s..1h, got %s", c.Hold)
	}
	if c.KeyRetention < c.Hold {
		return fmt.Errorf("cart.key_retention: must be at least cart.hold (%s), got %s", c.Hold, c.KeyRetention)
	}
	if c.SweepInterval < 10*time.Millisecond || c.SweepInterval > time.Minute {
		return fmt.Errorf("cart.sweep_interval: must be 10ms..1m, got %s", c.SweepInterval)
	}
	if c.StockInterval < 10*time.Millisecond || c.StockInterval > 10*time.Second {
		return fmt.Errorf("cart.stock_interval: must be 10ms..10s, got %s", c.StockInterval)
	}
	if c.MaxKeys < 1 || c.MaxKeys > 100_000 {
		return fmt.Errorf("cart.max_keys: must be 1..100000, got %d", c.MaxKeys)
	}
	if c.MaxHolds < 1 || c.MaxHolds > 1000 {
		return fmt.Errorf("cart.max_holds: must be 1..1000, got %d", c.MaxHolds)
	}
	if c.MaxHeldUnits < 1 || c.MaxHeldUnits > MaxQtyPerAdd*100 {
		return fmt.Errorf("cart.max_held_units: must be 1..%d, got %d", MaxQtyPerAdd*100, c.MaxHeldUnits)
	}
	if c.ListPriceLimit < 1 || c.ListPriceLimit > c.MaxHeldUnits {
		return fmt.Errorf("cart.list_price_limit: must be 1..cart.max_held_units (%d), got %d", c.MaxHeldUnits, c.ListPriceLimit)
	}
	if c.RedisPrefix == "" || len(c.RedisPrefix) > 32 {
		return fmt.Errorf("cart.redis_prefix: must be 1-32 bytes")
	}
	return c.validateOrders()
}

// WebhookConfig is the `webhooks:` section.
type WebhookConfig struct {
	// OrdersURL receives every order as a signed POST. Empty = orders are
	// stored and listed but not delivered.
	OrdersURL string `yaml:"orders_url"`
	// Secret keys the HMAC-SHA256 signatures (webhook-signature, and the
	// deprecated X-Liveroom-Signature). A secret of the form whsec_<base64>
	// (what Standard Webhooks libraries generate) is used as the decoded
	// bytes in webhook-signature.
	Secret string `yaml:"secret"`
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `yaml:"timeout"`
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// (with jitter).
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// MaxAttempts bounds the attempts of one delivery; after the last one
	// fails it is parked: listed by GET /api/v1/webhooks/failed until an
	// admin retries it. RetrySpan says over how long the attempts spread.
	MaxAttempts int `yaml:"max_attempts"`
	// Concurrency is how many deliveries are in flight at once per node.
	Concurrency int `yaml:"concurrency"`
	// PollInterval is how often the outbox looks for due deliveries (new
	// orders of this node wake it at once).
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Defaults of WebhookConfig.
const (
	DefaultWebhookTimeout     = 10 * time.Second
	DefaultWebhookRetryMin    = time.Second
	DefaultWebhookRetryMax    = time.Hour
	DefaultWebhookMaxAttempts = 24 // with the default backoff: parked 6–12 hours after the order
	DefaultWebhookConcurrency = 4
	DefaultWebhookPoll        = time.Second
)

// SetDefaults fills unset fields.
func (c *WebhookConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultWebhookTimeout
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultWebhookRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultWebhookRetryMax
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultWebhookMaxAttempts
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultWebhookConcurrency
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultWebhookPoll
	}
}

// Validate reports the first invalid field, named by its YAML key. The
// secret is never echoed.
func (c WebhookConfig) Validate() error {
	if c.OrdersURL != "" {
		u, err := url.Parse(c.OrdersURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhooks.orders_url: must be an http(s) URL")
		}
		if len(c.Secret) < 16 {
			return fmt.Errorf("webhooks.secret: must be at least 16 characters when webhooks.orders_url is set")
		}
		if rest, ok := strings.CutPrefix(c.Secret, "whsec_"); ok {
			if k, err := base64.StdEncoding.DecodeString(rest); err != nil || len(k) < 16 {
				return fmt.Errorf("webhooks.secret: a whsec_ secret must be followed by at least 16 bytes in base64")
			}
		}
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > 5*time.Minute {
		return fmt.Errorf("webhooks.timeout: must be 100ms..5m, got %s", c.Timeout)
	}
	if c.RetryMin < 10*time.Millisecond {
		return fmt.Errorf("webhooks.retry_min: must be at least 10ms, got %s", c.RetryMin)
	}
	if c.RetryMax < c.RetryMin || c.RetryMax > 24*time.Hour {
		return fmt.Errorf("webhooks.retry_max: must be webhooks.retry_min..24h, got %s", c.RetryMax)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 1000 {
		return fmt.Errorf("webhooks.max_attempts: must be 1..1000, got %d", c.MaxAttempts)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return fmt.Errorf("webhooks.concurrency: must be 1..256, got %d", c.Concurrency)
	}
	if c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute {
		return fmt.Errorf("webhooks.poll_interval: must be 10ms..1m, got %s", c.PollInterval)
	}
	return nil
}

// RetrySpan is the time from a delivery's first attempt to its last, the
// shortest and the longest the jitter allows (attempts themselves not
// counted): MaxAttempts−1 waits of backoff.
func (c WebhookConfig) RetrySpan() (lo, hi time.Duration) {
	for a := 1; a < c.MaxAttempts; a++ {
		lo += backoff(a, c.RetryMin, c.RetryMax, func() float64 { return 0 })
		hi += backoff(a, c.RetryMin, c.RetryMax, func() float64 { return 1 })
	}
	return lo, hi
}
