package media_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

func TestPatchTrickleAndErrors(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 20*time.Second)
	v, ref := startViewer(t, ctx, s.SFU, "p")
	if etag, err := s.SessionETag("p", ref.get()); err != nil || len(etag) < 3 {
		t.Fatalf("SessionETag: %q, %v", etag, err)
	}
	clientUfrag := strings.SplitN(strings.SplitN(v.PC.LocalDescription().SDP, "a=ice-ufrag:", 2)[1], "\r\n", 2)[0]
	cases := []struct {
		name string
		frag string
		want error
	}{
		{"trickled candidate", "a=ice-ufrag:" + clientUfrag + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n", nil},
		{"end of candidates only", "a=end-of-candidates\r\n", nil},
		{"not a fragment", "hello", media.ErrBadFragment},
		{"bad candidate", "a=candidate:nonsense\r\n", media.ErrBadFragment},
		{"restart without password", "a=ice-ufrag:newufrag\r\n", media.ErrICERestartUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Patch(ctx, "p", ref.get(), c.frag)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if got != "" {
				t.Errorf("trickle answer: got %q, want empty", got)
			}
		})
	}
}

// TestPatchICERestart restarts ICE on a connected viewer the way a WHEP
// client does (RFC 9725 4.4): new credentials in a PATCH, the server's in
// the response, media continues.
func TestPatchICERestart(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "ir", "host")
	v, ref := startViewer(t, ctx, s.SFU, "ir")
	waitStats(t, ctx, v, "media", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })
	etag, _ := s.SessionETag("ir", ref.get())

	pc := v.PC
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	frag := fragmentOf(pc.LocalDescription().SDP)
	answerFrag, err := s.Patch(ctx, "ir", ref.get(), frag)
	if err != nil {
		t.Fatalf("Patch restart: %v", err)
	}
	t.Logf("server fragment:\n%s", answerFrag)
	if !strings.Contains(answerFrag, "a=ice-ufrag:") || !strings.Contains(answerFrag, "a=candidate:") {
		t.Fatalf("restart answer fragment lacks credentials or candidates:\n%s", answerFrag)
	}
	answer := applyFragment(pc.RemoteDescription().SDP, answerFrag)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("apply restarted answer: %v", err)
	}
	if newTag, _ := s.SessionETag("ir", ref.get()); newTag == etag {
		t.Errorf("ETag unchanged across ICE restart: %s", newTag)
	}
	restarted := time.Now()
	waitStats(t, ctx, v, "media after the restart", func(st mediatest.ViewerStats) bool {
		return st.Video.LastAt.After(restarted.Add(time.Second)) && st.Audio.LastAt.After(restarted.Add(time.Second))
	})
}

// fragmentOf extracts what a client PATCHes for a restart.
func fragmentOf(sdp string) string {
	var b strings.Builder
	ufrag, pwd, mid := "", "", ""
	var cands []string
	for _, l := range strings.Split(sdp, "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:") && ufrag == "":
			ufrag = l
		case strings.HasPrefix(l, "a=ice-pwd:") && pwd == "":
			pwd = l
		case strings.HasPrefix(l, "a=mid:") && mid == "":
			mid = l
		case strings.HasPrefix(l, "a=candidate:"):
			cands = append(cands, l)
		}
	}
	b.WriteString(ufrag + "\r\n" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n" + mid + "\r\n")
	for _, c := range cands {
		b.WriteString(c + "\r\n")
	}
	return b.String()
}

// applyFragment rebuilds the full answer a WHEP client needs from the
// previous one and the server's restart fragment.
func applyFragment(prev, frag string) string {
	var ufrag, pwd string
	var cands []string
	for _, l := range strings.Split(frag, "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			ufrag = l
		case strings.HasPrefix(l, "a=ice-pwd:"):
			pwd = l
		case strings.HasPrefix(l, "a=candidate:"):
			cands = append(cands, l)
		}
	}
	var out []string
	inserted := false
	for _, l := range strings.Split(prev, "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			out = append(out, ufrag)
		case strings.HasPrefix(l, "a=ice-pwd:"):
			out = append(out, pwd)
		case strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
		case strings.HasPrefix(l, "a=mid:") && !inserted:
			out = append(out, l)
			out = append(out, cands...)
			out = append(out, "a=end-of-candidates")
			inserted = true
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}
