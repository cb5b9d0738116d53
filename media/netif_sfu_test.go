package media_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// TestAddressAllowList: with listen_ip "" and webrtc.addresses naming the
// loopback address, media is served on exactly that address over UDP and
// ICE-TCP, read from the host's real interfaces.
func TestAddressAllowList(t *testing.T) {
	s := newSFU(t, func(c *media.Config) {
		c.ListenIP = ""
		c.Addresses = []string{"127.0.0.1"}
	})
	got := s.UsableAddrs()
	if len(got) != 1 || got[0].Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("usable addresses: got %v, want 127.0.0.1 only", got)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("ready: %v", err)
	}
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "allow", "host")
	for _, network := range []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4} {
		api, err := mediatest.NewAPI(network)
		if err != nil {
			t.Fatal(err)
		}
		v, err := mediatest.NewViewer(ctx, subscribeVia(s.SFU, "allow", nil), mediatest.ViewerOptions{API: api})
		if err != nil {
			t.Fatalf("%s viewer: %v", network, err)
		}
		defer v.Close()
		waitStats(t, ctx, v, network.String()+" media", func(st mediatest.ViewerStats) bool {
			return st.Keyframes > 0 && st.Audio.Packets > 25
		})
		pair, err := v.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("selected pair: %v %v", pair, err)
		}
		if pair.Remote.Address != "127.0.0.1" {
			t.Errorf("%s: media from %s, want 127.0.0.1", network, pair.Remote.Address)
		}
	}
}

// TestNoUsableAddress: an allow-list nothing matches starts the node all
// the same; Ready says why no viewer could connect.
func TestNoUsableAddress(t *testing.T) {
	s := newSFU(t, func(c *media.Config) {
		c.ListenIP = ""
		c.Interfaces = []string{"no-such-if*"}
	})
	if got := s.UsableAddrs(); len(got) != 0 {
		t.Errorf("usable addresses: got %v, want none", got)
	}
	if err := s.Ready(context.Background()); !errors.Is(err, media.ErrNoMediaAddress) {
		t.Errorf("ready: got %v, want ErrNoMediaAddress", err)
	}
}

// TestNAT1To1IPsFollowingAddresses: with listen_ip "" the announced
// candidates are the NAT's public IPs, not the usable local addresses.
func TestNAT1To1IPsFollowingAddresses(t *testing.T) {
	s := newSFU(t, func(c *media.Config) {
		c.ListenIP = ""
		c.Addresses = []string{"127.0.0.1"}
		c.NAT1To1IPs = []string{"203.0.113.7"}
	})
	ctx := testCtx(t, 10*time.Second)
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.Subscribe(ctx, "nat", clientOffer(t, api, false, h264, opus))
	if err != nil {
		t.Fatal(err)
	}
	port := s.UsableAddrs()[0].Port()
	if want := fmt.Sprintf("203.0.113.7 %d typ host", port); !strings.Contains(sess.AnswerSDP, want) {
		t.Errorf("answer lacks a host candidate %q:\n%s", want, sess.AnswerSDP)
	}
	if strings.Contains(sess.AnswerSDP, " 127.0.0.1 ") {
		t.Errorf("answer still announces the local address:\n%s", sess.AnswerSDP)
	}
}
