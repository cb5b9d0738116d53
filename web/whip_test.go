package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
	"liveroom/room"
)

// offer makes a real browser-like offer: sendonly for a publisher,
// recvonly for a viewer, with the given video codecs (nil = defaults).
func offer(t *testing.T, dir webrtc.RTPTransceiverDirection, video []webrtc.RTPCodecParameters) string {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if video == nil {
		if err := m.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, c := range video {
			if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
				t.Fatal(err)
			}
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func waitFor(t *testing.T, what string, v *mediatest.Viewer, cond func(mediatest.ViewerStats) bool) mediatest.ViewerStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := v.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("%s: %v (stats %+v)", what, err, st)
	}
	return st
}

// A host publishes over WHIP with the stream key; three WHEP viewers get a
// decodable keyframe first, audio, and keep playing after the host reconnects.
func TestWHIPToWHEPOverHTTP(t *testing.T) {
	n := newTestNode(t)
	rm := n.createRoom("show", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	early, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/show", "").Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatalf("viewer before live: %v", err)
	}
	defer early.Close()

	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/show", rm.StreamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	viewers := []*mediatest.Viewer{early}
	for i := 0; i < 2; i++ {
		v, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/show", "").Signal, mediatest.ViewerOptions{})
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		defer v.Close()
		viewers = append(viewers, v)
	}
	for i, v := range viewers {
		st := waitFor(t, "keyframe and audio", v, func(s mediatest.ViewerStats) bool {
			return !s.FirstKeyframeAt.IsZero() && s.Audio.Packets > 10
		})
		if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
			t.Fatalf("viewer %d: first video packet keyframe=%v, SPS/PPS with it=%v; want both", i, st.FirstVideoKeyframe, st.FirstKeyframeParams)
		}
	}

	// The host's connection is replaced by a new one (same stream key =
	// same host): viewers continue without renegotiating.
	before := make([]mediatest.ViewerStats, len(viewers))
	for i, v := range viewers {
		before[i] = v.Stats()
	}
	pub2, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/show", rm.StreamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatalf("republish: %v", err)
	}
	defer pub2.Close()
	pub.Close()
	for i, v := range viewers {
		b := before[i]
		st := waitFor(t, "packets after reconnect", v, func(s mediatest.ViewerStats) bool {
			return s.Keyframes > b.Keyframes && s.Video.Packets > b.Video.Packets+100
		})
		if st.Video.SSRCChanges != b.Video.SSRCChanges || st.Video.SeqJumps != b.Video.SeqJumps {
			t.Fatalf("viewer %d: SSRC changes %d→%d, sequence jumps %d→%d; want none across the reconnect",
				i, b.Video.SSRCChanges, st.Video.SSRCChanges, b.Video.SeqJumps, st.Video.SeqJumps)
		}
	}
}

// Every bad request gets a 4xx JSON error and the live room keeps serving.
func TestWHIPWHEPBadInput(t *testing.T) {
	n := newTestNode(t)
	rm := n.createRoom("live", false)
	n.createRoom("private", true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/live", rm.StreamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	v, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/live", "").Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	waitFor(t, "first keyframe", v, func(s mediatest.ViewerStats) bool { return !s.FirstKeyframeAt.IsZero() })

	sendOffer := offer(t, webrtc.RTPTransceiverDirectionSendonly, nil)
	recvOffer := offer(t, webrtc.RTPTransceiverDirectionRecvonly, nil)
	noCodec := offer(t, webrtc.RTPTransceiverDirectionSendonly, []webrtc.RTPCodecParameters{{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/x-nonsense", ClockRate: 90000}, PayloadType: 120,
	}})
	otherHost := n.token("someone-else", room.RoleHost, "live")
	viewerTok := n.token("v1", room.RoleViewer, "live")
	otherRoomHost := n.token("h2", room.RoleHost, "private")
	const sdp = "application/sdp"
	tests := []struct {
		name, method, path, bearer, ctype, body string
		status                                  int
		code                                    string
	}{
		{"unknown room", "POST", "/whip/nope", rm.StreamKey, sdp, sendOffer, 404, "not_found"},
		{"invalid room id", "POST", "/whep/..%2f", "", sdp, recvOffer, 404, "not_found"},
		{"no credentials", "POST", "/whip/live", "", sdp, sendOffer, 401, "unauthorized"},
		{"wrong stream key", "POST", "/whip/live", "sk_wrong", sdp, sendOffer, 401, "unauthorized"},
		{"viewer token", "POST", "/whip/live", viewerTok, sdp, sendOffer, 403, "forbidden"},
		{"other room's host", "POST", "/whip/live", otherRoomHost, sdp, sendOffer, 401, "unauthorized"},
		{"second publisher", "POST", "/whip/live", otherHost, sdp, sendOffer, 409, "conflict"},
		{"wrong content type", "POST", "/whip/live", rm.StreamKey, "text/plain", sendOffer, 415, "bad_request"},
		{"empty body", "POST", "/whep/live", "", sdp, "", 400, "bad_request"},
		{"malformed sdp", "POST", "/whep/live", "", sdp, "v=0\r\nthis is not sdp\r\n", 400, "bad_request"},
		{"binary garbage", "POST", "/whep/live", "", sdp, "\x00\xff\x10garbage", 400, "bad_request"},
		{"no usable codec", "POST", "/whip/live", otherHost, sdp, noCodec, 400, "bad_request"},
		{"oversized body", "POST", "/whep/live", "", sdp, strings.Repeat("a=x\r\n", 30000), 413, "too_large"},
		{"private room without token", "POST", "/whep/private", "", sdp, recvOffer, 401, "unauthorized"},
		{"forged token on public room", "POST", "/whep/live", "eyJhbGciOiJub25lIn0.e30.", sdp, recvOffer, 401, "unauthorized"},
		{"delete unknown whep session", "DELETE", "/whep/live/nope", "", "", "", 404, "not_found"},
		{"delete unknown whip session", "DELETE", "/whip/live/nope", rm.StreamKey, "", "", 404, "not_found"},
		{"delete whip without auth", "DELETE", "/whip/live/nope", "", "", "", 401, "unauthorized"},
		{"patch wrong content type", "PATCH", "/whep/live/nope", "", "application/sdp", "a=x", 415, "bad_request"},
		{"patch unknown session", "PATCH", "/whep/live/nope", "", "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := n.do(tc.method, tc.path, tc.bearer, tc.ctype, []byte(tc.body))
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, body, tc.status)
			}
			if got := errorCode(t, body); got != tc.code {
				t.Fatalf("got code %q, want %q", got, tc.code)
			}
		})
	}

	// The host's session cannot be ended through the unauthenticated WHEP
	// route, even by someone who learnt its id.
	pubSig := mediatest.WHIP(n.srv.URL+"/whip/live", rm.StreamKey)
	pub2, err := mediatest.NewPublisher(ctx, pubSig.Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Close()
	pubPath := strings.TrimPrefix(pubSig.Location(), n.srv.URL)
	whepPath := strings.Replace(pubPath, "/whip/", "/whep/", 1)
	if status, _, body := n.do("DELETE", whepPath, "", "", nil); status != http.StatusNotFound {
		t.Fatalf("DELETE of the publisher's session via WHEP: got %d %s, want 404", status, body)
	}

	// The room kept serving: the viewer still receives, and a new viewer joins.
	before := v.Stats().Video.Packets
	waitFor(t, "still receiving", v, func(s mediatest.ViewerStats) bool { return s.Video.Packets > before+50 })
	v2, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/live", "").Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	waitFor(t, "new viewer keyframe", v2, func(s mediatest.ViewerStats) bool { return !s.FirstKeyframeAt.IsZero() })

	// A private room plays with a token for it.
	priv, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/private", n.token("v9", room.RoleViewer, "private")).Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatalf("private room with token: %v", err)
	}
	priv.Close()
}

// DELETE ends a session; the second DELETE of it is a 404.
func TestWHEPDelete(t *testing.T) {
	n := newTestNode(t)
	n.createRoom("r", false)
	sig := mediatest.WHEP(n.srv.URL+"/whep/r", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := mediatest.NewViewer(ctx, sig.Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	path := strings.TrimPrefix(sig.Location(), n.srv.URL)
	if status, _, body := n.do("DELETE", path, "", "", nil); status != http.StatusOK {
		t.Fatalf("delete: got %d %s", status, body)
	}
	if status, _, _ := n.do("DELETE", path, "", "", nil); status != http.StatusNotFound {
		t.Fatalf("second delete: got %d, want 404", status)
	}
}
