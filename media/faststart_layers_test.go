package media_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"liveroom/media/mediatest"
)

// TestLayeredPublisher checks the constrained-link tests' publisher: the
// layers are encoded frame-aligned, single-layer mode plays through the SFU,
// and simulcast mode offers the three RIDs and arrives as
// three layers.
func TestLayeredPublisher(t *testing.T) {
	needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	layers, err := mediatest.EncodeLayers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("got %d layers, want 3", len(layers))
	}

	t.Run("single layer plays", func(t *testing.T) {
		s := newSFU(t)
		pub, err := mediatest.NewLayeredPublisher(ctx, publishVia(s.SFU, "layers", "host", nil), mediatest.LayeredPublisherOptions{Layers: layers, Single: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		if err := pub.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		v, _ := startViewer(t, ctx, s.SFU, "layers")
		if _, err := v.WaitFor(ctx, func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 && st.Audio.Packets > 25 }); err != nil {
			t.Fatalf("viewer of a single-layer publisher: %v (%+v)", err, v.Stats())
		}
	})

	t.Run("simulcast arrives as three layers", func(t *testing.T) {
		s := newSFU(t)
		pub, err := mediatest.NewLayeredPublisher(ctx, publishVia(s.SFU, "layers", "host", nil), mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		if err := pub.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		for {
			l, _ := s.Layers("layers")
			if len(l.Layers) == 3 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("layers: %+v, want f, h, q", l)
			case <-time.After(50 * time.Millisecond):
			}
		}
		// A viewer moved to a layer gets that layer's keyframe on request:
		// the publisher hears keyframe requests for every rid.
		_, ref := startViewer(t, ctx, s.SFU, "layers")
		for _, rid := range []string{"f", "h"} {
			if _, err := s.SetViewerQuality("layers", ref.get(), rid); err != nil {
				t.Fatal(err)
			}
			for pub.PLIsFor(rid) == 0 {
				select {
				case <-ctx.Done():
					t.Fatalf("no keyframe request reached rid %s (all rids: %d)", rid, pub.PLIs())
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	})

	t.Run("simulcast offer", func(t *testing.T) {
		var offer string
		stop := errors.New("offer captured")
		_, err := mediatest.NewLayeredPublisher(ctx, func(_ context.Context, o string) (string, error) {
			offer = o
			return "", stop
		}, mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
		if !errors.Is(err, stop) {
			t.Fatalf("got %v, want the capture", err)
		}
		for _, want := range []string{"a=rid:f send", "a=rid:h send", "a=rid:q send", "a=simulcast:send f;h;q"} {
			if !strings.Contains(offer, want) {
				t.Errorf("offer has no %q:\n%s", want, offer)
			}
		}
	})
}
