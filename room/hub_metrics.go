package room

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// hubMetrics are the hub's Prometheus series, registered on the registerer
// given to NewHub (never the global one).
type hubMetrics struct {
	conns       prometheus.Gauge
	rooms       prometheus.Gauge
	rejects     *prometheus.CounterVec // refused before serving: reason
	framesIn    *prometheus.CounterVec // client frames: type (registered kinds, else "invalid")
	framesOut   prometheus.Counter     // frames written to clients
	published   *prometheus.CounterVec // room events fanned out on this node: type
	deliveries  prometheus.Counter     // events queued to connections
	drops       *prometheus.CounterVec // events not delivered: reason
	disconnects *prometheus.CounterVec // reason
	fanout      prometheus.Histogram   // time to queue one event to every local connection
}

func newHubMetrics(reg prometheus.Registerer) (*hubMetrics, error) {
	const ns, sub = "liveroom", "ws"
	m := &hubMetrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connections",
			Help: "Open WebSocket connections."}),
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "rooms",
			Help: "Rooms with local connections on this node."}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejects_total",
			Help: "Connections refused, by reason."}, []string{"reason"}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "messages_in_total",
			Help: "Client frames received, by type."}, []string{"type"}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "messages_out_total",
			Help: "Frames written to clients."}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "Events fanned out to local connections, by type."}, []string{"type"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "deliveries_total",
			Help: "Events queued to connections (one event to N connections counts N)."}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "drops_total",
			Help: "Events or frames dropped, by reason."}, []string{"reason"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "disconnects_total",
			Help: "Connections ended, by reason."}, []string{"reason"}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "fanout_seconds",
			Help:    "Time to queue one event to every local connection of its room.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 8)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.rooms, m.rejects, m.framesIn, m.framesOut,
		m.published, m.deliveries, m.drops, m.disconnects, m.fanout} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("hub metrics: %w", err)
		}
	}
	return m, nil
}
