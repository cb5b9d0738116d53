package mediatest

import (
	"net"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// NewAPI returns a client-side webrtc.API like a browser's: default codecs
// and interceptors (NACK, reports, TWCC), host candidates including loopback
// (tests run on 127.0.0.1), no mDNS. networks defaults to UDP4; pass
// webrtc.NetworkTypeTCP4 for an ICE-TCP client.
func NewAPI(networks ...webrtc.NetworkType) (*webrtc.API, error) {
	return newAPI(true, nil, networks)
}

// NewAPIWithoutInterceptors is NewAPI with no interceptors: a sender that
// writes its own RTCP sender reports (its own capture clock), as an encoder
// behind a transcoder would.
func NewAPIWithoutInterceptors(networks ...webrtc.NetworkType) (*webrtc.API, error) {
	return newAPI(false, nil, networks)
}

// NewAPIWith is NewAPI with the setting engine adjusted by configure (e.g.
// ICE timeouts) after the defaults are set.
func NewAPIWith(configure func(*webrtc.SettingEngine), networks ...webrtc.NetworkType) (*webrtc.API, error) {
	return newAPI(true, configure, networks)
}

// NewLoopbackAPI is NewAPI gathering on loopback addresses only: a peer of a
// server on 127.0.0.1 whose ICE pair must not land on an address of another
// test's veth (which vanishes with that test, and the pair with it).
func NewLoopbackAPI() (*webrtc.API, error) {
	return newAPI(true, func(se *webrtc.SettingEngine) {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}, nil)
}

func newAPI(interceptors bool, configure func(*webrtc.SettingEngine), networks []webrtc.NetworkType) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if interceptors {
		if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
			return nil, err
		}
	}
	if len(networks) == 0 {
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes(networks)
	se.SetInterfaceFilter(offTestLinkHostSide)
	if configure != nil {
		configure(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// offTestLinkHostSide keeps a peer off the root-namespace end of a test's
// veth (netshape's lrs…h, the HLS fallback test's lrh…): that interface, and
// an ICE pair on it, vanishes when its test ends, whichever test the peer
// belongs to (packages run in parallel). Inside a test's namespace the other
// end (lrs…p, lrp…) is kept: it is the namespace's way out.
func offTestLinkHostSide(name string) bool {
	return !strings.HasPrefix(name, "lrh") && !(strings.HasPrefix(name, "lrs") && strings.HasSuffix(name, "h"))
}
