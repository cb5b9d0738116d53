package cart

import "github.com/prometheus/client_golang/prometheus"

// auctionMetrics are the auctions' Prometheus series (part of Metrics).
type auctionMetrics struct {
	bids       *prometheus.CounterVec
	started    prometheus.Counter
	ended      *prometheus.CounterVec
	extensions prometheus.Counter
	removed    prometheus.Counter
}

func newAuctionMetrics(reg prometheus.Registerer) (*auctionMetrics, error) {
	m := &auctionMetrics{
		bids: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_auction_bids_total",
			Help: "auction.bid (kind bid) and auction.max (kind max) requests by result: accepted, replay, or the error code (error for a store failure).",
		}, []string{"kind", "result"}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_auction_started_total",
			Help: "Auctions started on this node.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_auction_ended_total",
			Help: "Auctions ended by this node, by result: sold, no_sale (closed at the end), stopped (by the host).",
		}, []string{"result"}),
		extensions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_auction_extensions_total",
			Help: "Accepted bids that moved an auction's end (soft close).",
		}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_auction_bidders_removed_total",
			Help: "Bidders removed from an auction by a moderator.",
		}),
	}
	for _, c := range []prometheus.Collector{m.bids, m.started, m.ended, m.extensions, m.removed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) aucBid(max bool, r BidResult, err error) {
	if m == nil || m.auc == nil {
		return
	}
	kind := "bid"
	if max {
		kind = "max"
	}
	result := "accepted"
	switch {
	case err != nil:
		result = "error"
		if c := ErrorCode(err); c != "" {
			result = string(c)
		}
	case r.Replayed:
		result = "replay"
	}
	m.auc.bids.WithLabelValues(kind, result).Inc()
	if err == nil && r.Extended && !r.Replayed {
		m.auc.extensions.Inc()
	}
}

func (m *Metrics) aucStarted() {
	if m != nil && m.auc != nil {
		m.auc.started.Inc()
	}
}

func (m *Metrics) aucEnded(result string) {
	if m != nil && m.auc != nil {
		m.auc.ended.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) aucRemoved() {
	if m != nil && m.auc != nil {
		m.auc.removed.Inc()
	}
}
