package media

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// layerMetrics are the simulcast and bandwidth-estimation series.
type layerMetrics struct {
	viewers  *prometheus.GaugeVec
	paused   prometheus.Gauge
	switches *prometheus.CounterVec
	estimate prometheus.Histogram
	padding  prometheus.Counter     // probe padding bytes (probe_pad.go)
	probes   *prometheus.CounterVec // probes by result
	readers  prometheus.Counter     // moves of a room's readers to another layer (reader_layer.go)

	byLayer [maxLayers]prometheus.Gauge
	bySw    map[string]prometheus.Counter
}

func newLayerMetrics() layerMetrics {
	m := layerMetrics{
		viewers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liveroom_media_layer_viewers",
			Help: "Viewers receiving each video layer, by slot (0 = the room's default/top layer; single-layer rooms use 0 only).",
		}, []string{"layer"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveroom_media_viewers_paused",
			Help: "Viewers whose video is paused because not even the lowest layer fits their connection (audio continues).",
		}),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_media_layer_switches_total",
			Help: "Viewer layer changes: up, down, pause, resume.",
		}, []string{"direction"}),
		estimate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "liveroom_media_viewer_bandwidth_estimate_bits",
			Help:    "Viewers' estimated downlink bandwidth (bits/s), sampled once a second per viewer.",
			Buckets: []float64{100e3, 200e3, 400e3, 800e3, 1.5e6, 3e6, 6e6, 12e6},
		}),
		padding: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_probe_padding_bytes_total",
			Help: "Padding bytes sent to viewers to probe their bandwidth before an up-switch or a resume.",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveroom_media_probes_total",
			Help: "Bandwidth probes before an up-switch or a resume, by result (passed, failed).",
		}, []string{"result"}),
		readers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveroom_media_reader_layer_switches_total",
			Help: "Moves of a room's readers (recorder, LL-HLS, RTSP) to another simulcast layer: its top layer stopped, or came back.",
		}),
		bySw: map[string]prometheus.Counter{},
	}
	for i := range maxLayers {
		m.byLayer[i] = m.viewers.WithLabelValues(strconv.Itoa(i))
	}
	for _, d := range []string{"up", "down", "pause", "resume"} {
		m.bySw[d] = m.switches.WithLabelValues(d)
	}
	return m
}

// layerGauge moves a viewer into (+1) or out of (-1) state cur.
func (m *metrics) layerGauge(cur int32, delta float64) {
	switch {
	case cur >= 0 && int(cur) < maxLayers:
		m.layers.byLayer[cur].Add(delta)
	case cur == curPaused:
		m.layers.paused.Add(delta)
	}
}

func (m *metrics) layerSwitch(direction string) { m.layers.bySw[direction].Inc() }

func (m *metrics) readerLayerSwitch() { m.layers.readers.Inc() }

func (m *metrics) estimate(bps int64) { m.layers.estimate.Observe(float64(bps)) }

func (m *metrics) probePadding(bytes int) { m.layers.padding.Add(float64(bytes)) }

func (m *metrics) probeDone(passed bool) {
	r := "failed"
	if passed {
		r = "passed"
	}
	m.layers.probes.WithLabelValues(r).Inc()
}
