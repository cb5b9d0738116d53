package media_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// Each cap refuses the admission past it, with the right reason, scope and
// Retry-After, and frees its place when released.
func TestAdmissionCaps(t *testing.T) {
	type admit struct {
		pub       bool
		room, key string
	}
	cases := []struct {
		name      string
		limits    media.Limits
		fill      []admit
		next      admit
		reason    string
		perClient bool
	}{
		{"unconnected per address", media.Limits{UnconnectedPerAddress: 2},
			[]admit{{false, "a", "10.0.0.1"}, {false, "b", "10.0.0.1"}, {false, "a", "10.0.0.2"}},
			admit{false, "c", "10.0.0.1"}, "unconnected_per_address", true},
		{"unconnected per room", media.Limits{UnconnectedPerRoom: 2},
			[]admit{{false, "a", "10.0.0.1"}, {false, "a", "10.0.0.2"}, {false, "b", "10.0.0.2"}},
			admit{false, "a", "10.0.0.3"}, "unconnected_per_room", false},
		{"unconnected per node", media.Limits{UnconnectedPerNode: 2},
			[]admit{{false, "a", "10.0.0.1"}, {false, "b", "10.0.0.2"}, {true, "b", "10.0.0.2"}},
			admit{false, "c", "10.0.0.3"}, "unconnected_per_node", false},
		{"viewers per address counts unconnected ones too", media.Limits{ViewersPerAddress: 1},
			[]admit{{false, "a", "10.0.0.1"}},
			admit{false, "b", "10.0.0.1"}, "viewers_per_address", true},
		{"viewers per node", media.Limits{ViewersPerNode: 1},
			[]admit{{false, "a", "10.0.0.1"}},
			admit{false, "b", "10.0.0.2"}, "viewers_per_node", false},
		{"publishers per address", media.Limits{PublishersUnconnectedPerAddress: 1},
			[]admit{{true, "a", "10.0.0.1"}, {false, "a", "10.0.0.1"}},
			admit{true, "b", "10.0.0.1"}, "publishers_unconnected_per_address", true},
		{"publishers per node", media.Limits{PublishersUnconnectedPerNode: 1},
			[]admit{{true, "a", "10.0.0.1"}},
			admit{true, "b", "10.0.0.2"}, "publishers_unconnected_per_node", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSFU(t, func(cfg *media.Config) { cfg.Limits = c.limits })
			take := func(a admit) (*media.Admission, error) {
				if a.pub {
					return s.AdmitPublisher(a.room, a.key)
				}
				return s.AdmitViewer(a.room, a.key)
			}
			var held []*media.Admission
			for _, a := range c.fill {
				adm, err := take(a)
				if err != nil {
					t.Fatalf("admit %+v: %v", a, err)
				}
				held = append(held, adm)
			}
			_, err := take(c.next)
			var le *media.LimitError
			if !errors.As(err, &le) || !errors.Is(err, media.ErrLimited) {
				t.Fatalf("admit %+v past the cap: got %v, want a *LimitError", c.next, err)
			}
			if le.Reason != c.reason || le.PerClient != c.perClient || le.RetryAfter <= 0 {
				t.Errorf("got %+v, want reason %s, per client %v, a Retry-After", le, c.reason, c.perClient)
			}
			if got := metricValue(t, s.reg, "liveroom_media_admissions_refused_total", map[string]string{"reason": c.reason}); got != 1 {
				t.Errorf("refusals{reason=%s}: got %v, want 1", c.reason, got)
			}
			for _, a := range held {
				a.Release()
				a.Release() // idempotent
			}
			adm, err := take(c.next)
			if err != nil {
				t.Fatalf("admit %+v after releasing: %v", c.next, err)
			}
			adm.Release()
			for _, st := range []string{"unconnected", "connected"} {
				if got := metricValue(t, s.reg, "liveroom_media_sessions", map[string]string{"kind": "viewer", "state": st}); got != 0 {
					t.Errorf("viewer %s sessions after release: got %v, want 0", st, got)
				}
			}
		})
	}
}

// A real viewer is unconnected until ICE/DTLS is up, then a connected
// viewer, then nothing once it leaves; a viewer that never connects is
// closed at the connect timeout and frees its place.
func TestAdmissionFollowsTheSession(t *testing.T) {
	s := newSFU(t, func(c *media.Config) {
		c.ConnectTimeout = time.Second
		c.Limits = media.Limits{UnconnectedPerAddress: 1, ViewersPerAddress: 2}
	})
	ctx := testCtx(t, 20*time.Second)
	sessions := func(state string) float64 {
		return metricValue(t, s.reg, "liveroom_media_sessions", map[string]string{"kind": "viewer", "state": state})
	}
	signal := func(key string) mediatest.Signal {
		return func(ctx context.Context, offer string) (string, error) {
			adm, err := s.AdmitViewer("room", key)
			if err != nil {
				return "", err
			}
			defer adm.Release()
			sess, err := s.Subscribe(media.WithAdmission(ctx, adm), "room", offer)
			return sess.AnswerSDP, err
		}
	}
	v, err := mediatest.NewViewer(ctx, signal("10.0.0.1"), mediatest.ViewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "one connected viewer", func() bool { return sessions("connected") == 1 && sessions("unconnected") == 0 })

	// A client that never connects holds the one unconnected place of its
	// address until the connect timeout.
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signal("10.0.0.1")(ctx, clientOffer(t, api, false, h264, opus)); err != nil {
		t.Fatal(err)
	}
	if _, err := signal("10.0.0.1")(ctx, clientOffer(t, api, false, h264, opus)); !errors.Is(err, media.ErrLimited) {
		t.Fatalf("second unconnected session of one address: got %v, want ErrLimited", err)
	}
	waitFor(t, ctx, "the stale session to time out", func() bool { return sessions("unconnected") == 0 })
	if _, err := signal("10.0.0.1")(ctx, clientOffer(t, api, false, h264, opus)); err != nil {
		t.Fatalf("after the connect timeout: %v", err)
	}
	_ = v.Close()
	waitFor(t, ctx, "the viewer to leave", func() bool { return sessions("connected") == 0 })
}

func TestLimitsValidate(t *testing.T) {
	var l media.Limits
	l.SetDefaults()
	if err := l.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	l.UnconnectedPerRoom = -1
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "webrtc.limits.unconnected_per_room") {
		t.Errorf("negative cap: got %v, want an error naming webrtc.limits.unconnected_per_room", err)
	}
	var r media.RTSPLimits
	r.SetDefaults()
	r.ReadersPerNode = -3
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "rtsp.limits.readers_per_node") {
		t.Errorf("negative RTSP cap: got %v, want an error naming rtsp.limits.readers_per_node", err)
	}
}

// The egress budget is measured: with three viewers of the ~0.55 Mbit/s
// test clip the node sends more than 1 Mbit/s and refuses new viewers
// (503, "egress"); when they leave it takes them again.
func TestAdmissionEgressBudget(t *testing.T) {
	s := newSFU(t, func(c *media.Config) { c.Limits = media.Limits{EgressMbps: 1} })
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "eg", "host")
	var viewers []*mediatest.Viewer
	for range 3 {
		v, _ := startViewer(t, ctx, s.SFU, "eg")
		viewers = append(viewers, v)
	}
	admit := func() error {
		adm, err := s.AdmitViewer("eg", "10.0.0.1")
		if err == nil {
			adm.Release()
		}
		return err
	}
	var le *media.LimitError
	waitFor(t, ctx, "the egress budget to refuse", func() bool { return errors.As(admit(), &le) })
	if le.Reason != "egress" || le.PerClient {
		t.Errorf("got %+v, want reason egress, not per client", le)
	}
	for _, v := range viewers {
		_ = v.Close()
	}
	waitFor(t, ctx, "the egress budget to admit again", func() bool { return admit() == nil })
}
