package cart

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cart's Prometheus series. One value is shared by the
// Service and the Outbox of a node; a nil *Metrics records nothing.
type Metrics struct {
	reservations *prometheus.CounterVec
	ended        *prometheus.CounterVec
	orders       prometheus.Counter
	conversions  prometheus.Counter
	soldOut      prometheus.Histogram
	deliveries   prometheus.Counter
	failures     *prometheus.CounterVec
	transitions  *prometheus.CounterVec // order_service.go
	auc          *auctionMetrics        // auction_metrics.go
}

// NewMetrics registers the series on reg (never the global registry).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_cart_reservations_total",
			Help: "cart.add requests by result: ok, replay, or the error code.",
		}, []string{"result"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_cart_reservations_ended_total",
			Help: "Reservations that ended, by how: checked_out, released, expired.",
		}, []string{"how"}),
		orders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_cart_orders_total",
			Help: "Orders stored.",
		}),
		conversions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_cart_conversions_total",
			Help: "Reservations turned into order items.",
		}),
		soldOut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "liveroom_cart_sale_sold_out_seconds",
			Help:    "Time from a sale's opening to its remaining stock first reaching 0.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_cart_webhook_deliveries_total",
			Help: "Orders delivered to the webhook (2xx answer).",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_cart_webhook_failures_total",
			Help: "Failed webhook attempts, by reason: status, redirect (never followed), network, store; parked counts deliveries given up after webhooks.max_attempts.",
		}, []string{"reason"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_cart_order_transitions_total",
			Help: "Order transitions, by the state reached (paid, fulfilled, cancelled) and for cancelled who cancelled (buyer, merchant, lapse).",
		}, []string{"state", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.reservations, m.ended, m.orders, m.conversions, m.soldOut, m.deliveries, m.failures, m.transitions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	if m.auc, err = newAuctionMetrics(reg); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) reserved(result string) {
	if m != nil {
		m.reservations.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) endedRes(how string, n int) {
	if m != nil && n > 0 {
		m.ended.WithLabelValues(how).Add(float64(n))
	}
}

func (m *Metrics) ordered(items int) {
	if m != nil {
		m.orders.Inc()
		m.conversions.Add(float64(items))
	}
}

func (m *Metrics) soldOutAfter(d time.Duration) {
	if m != nil {
		m.soldOut.Observe(max(d, 0).Seconds())
	}
}

func (m *Metrics) delivered() {
	if m != nil {
		m.deliveries.Inc()
	}
}

func (m *Metrics) deliveryFailed(reason string) {
	if m != nil {
		m.failures.WithLabelValues(reason).Inc()
	}
}
