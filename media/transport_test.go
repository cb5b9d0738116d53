package media_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func TestAddrSamePortUDPAndTCP(t *testing.T) {
	s := newSFU(t)
	udp, tcp := s.Addr()
	if udp == nil || tcp == nil {
		t.Fatalf("Addr: udp %v tcp %v, want both", udp, tcp)
	}
	if up, tp := udp.(*net.UDPAddr).Port, tcp.(*net.TCPAddr).Port; up != tp || up == 0 {
		t.Errorf("ports: udp %d tcp %d, want the same non-zero number", up, tp)
	}
}

func TestViewerOverICETCP(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "tcp", "host")
	api, err := mediatest.NewAPI(webrtc.NetworkTypeTCP4)
	if err != nil {
		t.Fatal(err)
	}
	v, err := mediatest.NewViewer(ctx, subscribeVia(s.SFU, "tcp", nil), mediatest.ViewerOptions{API: api})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	waitStats(t, ctx, v, "media over ICE-TCP", func(st mediatest.ViewerStats) bool {
		return st.Keyframes > 0 && st.Audio.Packets > 25
	})
	pair, err := v.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("selected pair: %v %v", pair, err)
	}
	if pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Errorf("selected remote candidate protocol: got %s, want tcp", pair.Remote.Protocol)
	}
}

func TestNAT1To1IPsInAnswer(t *testing.T) {
	s, err := media.New(media.Config{ListenIP: "127.0.0.1", NAT1To1IPs: []string{"203.0.113.7"}}, media.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	ctx := testCtx(t, 10*time.Second)
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.Subscribe(ctx, "nat", clientOffer(t, api, false, h264, opus))
	if err != nil {
		t.Fatal(err)
	}
	udp, _ := s.Addr()
	want := "203.0.113.7 " + strconv.Itoa(udp.(*net.UDPAddr).Port) + " typ host"
	if !strings.Contains(sess.AnswerSDP, want) {
		t.Errorf("answer lacks a host candidate %q:\n%s", want, sess.AnswerSDP)
	}
	if strings.Contains(sess.AnswerSDP, " 127.0.0.1 ") {
		t.Errorf("answer still announces the private address:\n%s", sess.AnswerSDP)
	}
}

// TestAllInterfaces listens on every interface (listen_ip "") and connects
// through a non-loopback address.
func TestAllInterfaces(t *testing.T) {
	if !hasNonLoopbackIPv4() {
		t.Skip("no non-loopback IPv4 interface")
	}
	s, err := media.New(media.Config{}, media.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	ctx := testCtx(t, 30*time.Second)
	pub, err := mediatest.NewPublisher(ctx, publishVia(s, "all", "host", nil), mediatest.PublisherOptions{Clip: clip(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	v, err := mediatest.NewViewer(ctx, subscribeVia(s, "all", nil), mediatest.ViewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	waitStats(t, ctx, v, "media", func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 })
}

func hasNonLoopbackIPv4() bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return true
		}
	}
	return false
}
