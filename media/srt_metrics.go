package media

import "github.com/prometheus/client_golang/prometheus"

// SRT handshake results (the liveroom_srt_handshakes_total label).
const (
	srtAccepted    = "accepted"
	srtBadStreamID = "bad_stream_id"
	srtReadMode    = "read"
	srtPassphrase  = "passphrase"
	srtAuth        = "auth"
	srtNoRoom      = "no_room"
	srtConflict    = "conflict"
	srtOverload    = "overload"
)

// srtMetrics counts SRT handshakes by result; publishers themselves are
// counted with the other sources (liveroom_publishers).
type srtMetrics struct {
	handshakes *prometheus.CounterVec
	reg        prometheus.Registerer
}

func newSRTMetrics(reg prometheus.Registerer) (*srtMetrics, error) {
	m := &srtMetrics{reg: reg, handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liveroom_srt_handshakes_total",
		Help: "SRT handshakes by result: accepted, bad_stream_id, read (reading is not served), passphrase, auth, no_room, conflict (another host publishes), overload (connection caps).",
	}, []string{"result"})}
	for _, r := range []string{srtAccepted, srtBadStreamID, srtReadMode, srtPassphrase, srtAuth, srtNoRoom, srtConflict, srtOverload} {
		m.handshakes.WithLabelValues(r)
	}
	if err := reg.Register(m.handshakes); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *srtMetrics) handshake(result string) { m.handshakes.WithLabelValues(result).Inc() }

func (m *srtMetrics) unregister() { m.reg.Unregister(m.handshakes) }
