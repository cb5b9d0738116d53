package cart

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// validateOrders checks the order-life part of the `cart:` section.
func (c Config) validateOrders() error {
	if c.PayWithin < 0 || c.PayWithin > MaxPayWithinS*time.Second {
		return fmt.Errorf("cart.pay_within: must be 0 (paid at once)..%s, got %s", MaxPayWithinS*time.Second, c.PayWithin)
	}
	if c.CheckoutURL != "" {
		if err := ValidCheckoutURL(c.CheckoutURL); err != nil {
			return fmt.Errorf("cart.checkout_url: %w", err)
		}
		if len(c.PaySecret) < 16 {
			return fmt.Errorf("cart.pay_secret: must be at least 16 characters when cart.checkout_url is set")
		}
	}
	return nil
}

// ValidCheckoutURL checks a checkout URL template: an absolute http(s) URL
// naming {order_id}, at most 1024 bytes.
func ValidCheckoutURL(t string) error {
	u, err := url.Parse(strings.ReplaceAll(t, "{order_id}", "o"))
	switch {
	case len(t) > 1024 || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("must be an http(s) URL of at most 1024 bytes")
	case !strings.Contains(t, "{order_id}"):
		return fmt.Errorf("must contain {order_id}")
	}
	return nil
}

// PaySignature is the lr_sig of a pay_url: hex HMAC-SHA256 under the pay
// secret of "room.order_id.total_cents.currency.expires" (expires in unix
// seconds). The merchant recomputes it from the URL's parameters, compares
// in constant time, and refuses the payment page past expires.
func PaySignature(secret, room, orderID string, totalCents int64, currency string, expires int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s.%d.%s.%d", room, orderID, totalCents, currency, expires)
	return hex.EncodeToString(mac.Sum(nil))
}

// PayURL builds an awaiting order's pay_url from template (the room's or
// cart.checkout_url): {order_id} replaced, and the signed fields added as
// query parameters lr_room, lr_total, lr_currency, lr_exp and lr_sig. It
// is "" for an order that is not awaiting payment or without a template.
func PayURL(template, secret string, o Order) string {
	if template == "" || o.stateOf() != OrderAwaitingPayment || o.PayBy == nil {
		return ""
	}
	u, err := url.Parse(strings.ReplaceAll(template, "{order_id}", url.PathEscape(o.ID)))
	if err != nil {
		return ""
	}
	exp := o.PayBy.Unix()
	q := u.Query()
	q.Set("lr_room", o.Room)
	q.Set("lr_total", strconv.FormatInt(o.TotalCents, 10))
	q.Set("lr_currency", o.Currency)
	q.Set("lr_exp", strconv.FormatInt(exp, 10))
	q.Set("lr_sig", PaySignature(secret, o.Room, o.ID, o.TotalCents, o.Currency, exp))
	u.RawQuery = q.Encode()
	return u.String()
}
