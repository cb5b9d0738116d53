package mediatest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
	"liveroom/media/netshape"
)

// hostCandidates gathers a peer's host candidates and returns their
// addresses.
func hostCandidates(t *testing.T, api *webrtc.API) []string {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("gathering did not complete in 10 s")
	}
	var addrs []string
	for _, line := range strings.Split(pc.LocalDescription().SDP, "\n") {
		if f := strings.Fields(line); len(f) > 7 && strings.HasPrefix(f[0], "a=candidate:") && f[7] == "host" {
			addrs = append(addrs, f[4])
		}
	}
	return addrs
}

// A test's peers never gather on the root-side end of another test's
// shaped link: that address vanishes when its test ends, and an ICE pair on
// it with it (packages run in parallel). A peer built without the filter
// does gather it, so the check can fail.
func TestPeersAvoidTestLinks(t *testing.T) {
	netshape.Need(t)
	link := netshape.New(t)
	host := link.HostAddr.String()

	plain := webrtc.NewAPI(webrtc.WithSettingEngine(func() webrtc.SettingEngine {
		var se webrtc.SettingEngine
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		return se
	}()))
	if got := hostCandidates(t, plain); !strings.Contains(strings.Join(got, " "), host) {
		t.Fatalf("an unfiltered peer gathered %v, not the link's %s: the check below would prove nothing", got, host)
	}

	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	got := hostCandidates(t, api)
	loop := false
	for _, a := range got {
		if a == host {
			t.Fatalf("a test peer gathered the shaped link's root-side address %s: %v", host, got)
		}
		loop = loop || a == "127.0.0.1"
	}
	if !loop {
		t.Fatalf("a test peer gathered %v, without loopback", got)
	}
}
