package media

import "github.com/prometheus/client_golang/prometheus"

// Drop reasons (label values of liveroom_media_packets_dropped_total).
const (
	dropQueueFull    = iota // a viewer's queue was full
	dropKeyframeWait        // video skipped while waiting for a keyframe
	dropStale               // from a replaced source, or reordered across a switch
	dropOversize            // payload larger than maxPayload
	numDropReasons
)

func dropReasonName(r int) string {
	switch r {
	case dropQueueFull:
		return "queue_full"
	case dropKeyframeWait:
		return "keyframe_wait"
	case dropStale:
		return "stale"
	}
	return "oversize"
}

// metrics are the SFU's Prometheus series. Label children are resolved once
// here so the packet path only does atomic adds.
type metrics struct {
	publishers      prometheus.Gauge
	viewers         prometheus.Gauge
	edgeServed      prometheus.Gauge   // edge nodes pulling rooms from this node
	edgePulls       prometheus.Gauge   // rooms this node pulls from their origin
	edgeStarts      prometheus.Counter // pulls started by this node
	packets         [numKinds]prometheus.Counter
	bytes           [numKinds]prometheus.Counter
	dropped         [numKinds][numDropReasons]prometheus.Counter
	nackReceived    prometheus.Counter
	retransmitted   prometheus.Counter
	rtxLimited      prometheus.Counter
	plis            prometheus.Counter
	sessions        *prometheus.GaugeVec   // WebRTC sessions by kind and state (limits.go)
	refusals        *prometheus.CounterVec // admissions refused, by reason
	unconnectedPeak prometheus.Gauge       // most unconnected viewer sessions at once
	egress          egressMeter
	layers          layerMetrics // metrics_layers.go

	reg        prometheus.Registerer
	registered []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	packets := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveroom_media_packets_forwarded_total",
		Help: "RTP packets sent to viewers.",
	}, []string{"kind"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveroom_media_bytes_forwarded_total",
		Help: "RTP payload bytes sent to viewers.",
	}, []string{"kind"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveroom_media_packets_dropped_total",
		Help: "RTP packets not sent, per viewer for queue_full and keyframe_wait.",
	}, []string{"kind", "reason"})
	m := &metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liveroom_media_sessions",
			Help: "WebRTC sessions under the limits: viewer or publisher, unconnected (answered, ICE/DTLS not up yet) or connected (viewers only; edge pulls are not counted).",
		}, []string{"kind", "state"}),
		unconnectedPeak: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveroom_media_sessions_unconnected_peak",
			Help: "The most unconnected WHEP sessions this node held at once since it started (at most webrtc.limits.unconnected_per_node).",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_media_admissions_refused_total",
			Help: "WebRTC and RTSP sessions refused by a cap, by reason (the cap's config key).",
		}, []string{"reason"}),
		publishers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveroom_media_publishers", Help: "Publisher sessions.",
		}),
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveroom_media_viewers", Help: "Viewer sessions.",
		}),
		edgeServed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveroom_media_edge_sessions", Help: "Edge nodes pulling a room from this node (its origin).",
		}),
		edgePulls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveroom_media_edge_pulls", Help: "Rooms this node pulls from their origin node.",
		}),
		edgeStarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_edge_pulls_started_total", Help: "Pulls from an origin node this node started.",
		}),
		nackReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_nack_packets_received_total",
			Help: "Packets viewers asked to be retransmitted.",
		}),
		retransmitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_packets_retransmitted_total",
			Help: "Packets retransmitted to viewers from the room history.",
		}),
		rtxLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_retransmissions_limited_total",
			Help: "Retransmissions skipped because the viewer's retransmission budget (its bandwidth estimate over one second) was spent.",
		}),
		plis: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_keyframe_requests_total",
			Help: "PLIs sent to publishers.",
		}),
	}
	for k := range numKinds {
		m.packets[k] = packets.WithLabelValues(k.String())
		m.bytes[k] = bytes.WithLabelValues(k.String())
		for r := range numDropReasons {
			m.dropped[k][r] = dropped.WithLabelValues(k.String(), dropReasonName(r))
		}
	}
	for _, r := range refusalReasons() {
		m.refusals.WithLabelValues(r)
	}
	m.sessionStates(0, 0, 0)
	m.layers = newLayerMetrics()
	m.reg = reg
	for _, c := range []prometheus.Collector{
		m.layers.viewers, m.layers.paused, m.layers.switches, m.layers.estimate,
		m.layers.padding, m.layers.probes, m.layers.readers,
		m.publishers, m.viewers, m.edgeServed, m.edgePulls, m.edgeStarts, packets, bytes, dropped, m.nackReceived, m.retransmitted, m.rtxLimited, m.plis,
		m.sessions, m.refusals, m.unconnectedPeak,
	} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, err
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

// source counts a room's source coming (+1) or going (-1).
func (m *metrics) source(src source, delta float64) {
	if isEdge(src) {
		m.edgePulls.Add(delta)
		return
	}
	m.publishers.Add(delta)
}

// viewer counts a viewer session coming (+1) or going (-1).
func (m *metrics) viewer(v *viewer, delta float64) {
	if v.edge {
		m.edgeServed.Add(delta)
		return
	}
	m.viewers.Add(delta)
}

// unregister lets another SFU register on the same Registerer later.
func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

func (m *metrics) drop(k kind, reason int) { m.dropped[k][reason].Inc() }

func (m *metrics) forwarded(k kind, packets, bytes uint64) {
	m.packets[k].Add(float64(packets))
	m.bytes[k].Add(float64(bytes))
	m.egress.add(bytes)
}

// sessionStates sets the session gauges (limits.go keeps the counts).
func (m *metrics) sessionStates(unconnected, viewers, pubUnconnected int) {
	m.sessions.WithLabelValues("viewer", "unconnected").Set(float64(unconnected))
	m.sessions.WithLabelValues("viewer", "connected").Set(float64(viewers))
	m.sessions.WithLabelValues("publisher", "unconnected").Set(float64(pubUnconnected))
}

func (m *metrics) refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

func (m *metrics) nacks(asked, sent, limited int) {
	m.nackReceived.Add(float64(asked))
	m.retransmitted.Add(float64(sent))
	m.rtxLimited.Add(float64(limited))
}

func (m *metrics) pliSent() { m.plis.Inc() }
