package media

import (
	"fmt"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// newAPI builds the one webrtc.API every session uses.
//
// Interceptors: the NACK generator (ask publishers for lost packets),
// receiver reports, and TWCC feedback towards publishers so their
// congestion control has something to work with. The same registration
// negotiates transport-cc with viewers; their feedback drives our own
// estimator (bwe.go), whose sequence numbers the viewer's writer stamps. Deliberately absent: pion's
// NACK responder, which would keep a copy of every packet per viewer; the
// room's shared history answers viewers' NACKs instead.
//
// viewers builds the API of viewer sessions, which only send: none of
// those interceptors has anything to do there (they act on received
// streams) but each would parse every RTCP packet the viewer sends (ten TWCC
// feedbacks a second) and run a ticker per session. transport-cc is still
// negotiated: the viewer's writer stamps it and its feedback is ours (bwe.go).
func newAPI(cfg Config, codecs codecTable, l *listeners, logs pionLogs, viewers bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := codecs.register(m); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}

	// Simulcast in: the mid and rid header extensions name each layer's
	// SSRC (simulcast.go).
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, fmt.Errorf("simulcast extensions: %w", err)
	}
	reg := &interceptor.Registry{}
	if viewers {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, k)
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, k); err != nil {
				return nil, fmt.Errorf("twcc: %w", err)
			}
		}
		return newAPIWith(cfg, m, reg, l, logs)
	}
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(logs))
	if err != nil {
		return nil, fmt.Errorf("nack generator: %w", err)
	}
	reg.Add(gen)
	// Receiver reports only: sender reports to viewers are written from the
	// room clock (sender_report.go), not stamped with send times by pion.
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(logs))
	if err != nil {
		return nil, fmt.Errorf("rtcp reports: %w", err)
	}
	reg.Add(rr)
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, fmt.Errorf("twcc: %w", err)
	}
	return newAPIWith(cfg, m, reg, l, logs)
}

func newAPIWith(cfg Config, m *webrtc.MediaEngine, reg *interceptor.Registry, l *listeners, logs pionLogs) (*webrtc.API, error) {

	se := webrtc.SettingEngine{LoggerFactory: logs}
	// Full ICE, not lite: as the controlled agent the server answers a
	// client's first check with a triggered check of its own, and a
	// controlling agent that receives a check on a pair it has just validated
	// nominates it at once instead of at its next pacing tick (pion clients
	// pace at 200 ms, which was most of a lone viewer's join time). The cost
	// is a few binding requests per session while connecting and a consent
	// check every keepalive interval.
	se.SetLite(false)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICEUDPMux(l.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if l.tcpMux != nil {
		se.SetICETCPMux(l.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	// An explicit loopback listen address (tests, a local dev box) must yield
	// candidates; with all interfaces the mux has a loopback socket only when
	// an allow-list names it.
	if ip := net.ParseIP(cfg.ListenIP); ip != nil && ip.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if l.addrs != nil {
		// ICE-TCP listens on every address; its candidates are offered for
		// the addresses the UDP mux serves now (pion reads the interfaces
		// afresh for each session), so both follow the same allow-lists
		// and skip the same tentative and link-local addresses.
		// pion's own loopback switch is on: the filter keeps loopback out
		// unless an allow-list names it.
		se.SetIPFilter(l.addrs.usableIP)
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(cfg.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("webrtc.nat_1to1_ips: %w", err)
		}
	}
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, 2*time.Second)

	return webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se),
	), nil
}
