package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media"
	"liveroom/media/mediatest"
	"liveroom/room"
)

// hlsNode is a test node whose HLS output is on.
func hlsNode(t *testing.T) *testNode {
	return newTestNode(t, func(d *Deps) { d.HLS = d.WHEP.(*media.SFU).NewHLS(media.HLSConfig{}) })
}

// goLive publishes the room over WHIP and marks it live in the store, as the
// lifecycle does.
func (n *testNode) goLive(ctx context.Context, rm room.Room) {
	n.t.Helper()
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/"+rm.ID, rm.StreamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		n.t.Fatalf("publish: %v", err)
	}
	n.t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.rooms.Update(ctx, rm.ID, func(r *room.Room) error { r.Status = room.StatusLive; return nil }); err != nil {
		n.t.Fatal(err)
	}
	// Connected is not yet sending: what the room sends is known once its
	// first audio and video packets arrived (a busy machine delays them).
	sfu := n.sfu
	for len(sfu.RoomCodecs(rm.ID)) < 2 {
		select {
		case <-ctx.Done():
			n.t.Fatalf("room %s: no media from the publisher (codecs %v)", rm.ID, sfu.RoomCodecs(rm.ID))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestHLSAccess: a public room's playlist is open; a private room's needs a
// room token or the signed URL that GET /api/v1/rooms/{room}/hls answers,
// and the URL's token works for its room only, not another, not the stream
// key; a room that is not live, an unknown room and traversal are refused
// with JSON errors.
func TestHLSAccess(t *testing.T) {
	n := hlsNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pubRoom := n.createRoom("open", false)
	priv := n.createRoom("vip", true)
	other := n.createRoom("other", true)
	n.goLive(ctx, pubRoom)
	n.goLive(ctx, priv)

	if code, _, body := n.do("GET", "/hls/open/index.m3u8", "", "", nil); code != http.StatusOK || !strings.HasPrefix(string(body), "#EXTM3U") {
		t.Fatalf("public room playlist: got %d %.80s, want 200 #EXTM3U", code, body)
	}

	viewer := n.token("ann", room.RoleViewer, "vip")
	for _, tc := range []struct {
		name, path, bearer string
		want               int
		code               string
	}{
		{"private, no credential", "/hls/vip/index.m3u8", "", 401, "unauthorized"},
		{"private, stream key", "/hls/vip/index.m3u8", priv.StreamKey, 401, "unauthorized"},
		{"private, token for another room", "/hls/vip/index.m3u8", n.token("ann", room.RoleViewer, "other"), 401, "unauthorized"},
		{"private, forged query token", "/hls/vip/index.m3u8?hls_token=g1.guest-hls.vip.x.9999999999.bad", "", 401, "unauthorized"},
		{"unknown room", "/hls/nope/index.m3u8", "", 404, "not_found"},
		{"traversal", "/hls/open/..%2f..%2fgo.mod", "", 404, "not_found"},
		{"not live", "/hls/other/index.m3u8", n.token("ann", room.RoleViewer, "other"), 503, "stream_unavailable"},
	} {
		code, _, body := n.do("GET", tc.path, tc.bearer, "", nil)
		if code != tc.want || errorCode(t, body) != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, code, body, tc.want, tc.code)
		}
	}
	if code, _, body := n.do("GET", "/hls/vip/index.m3u8", viewer, "", nil); code != http.StatusOK {
		t.Fatalf("private room with a viewer token: got %d %s", code, body)
	}

	// The signed URL, for players that cannot send headers.
	code, _, body := n.do("GET", "/api/v1/rooms/vip/hls", viewer, "", nil)
	var signed struct{ URL, ExpiresAt string }
	if err := json.Unmarshal(body, &signed); code != http.StatusOK || err != nil || !strings.Contains(signed.URL, "hls_token=") {
		t.Fatalf("signed url: got %d %s", code, body)
	}
	if code, _, _ := n.do("GET", "/api/v1/rooms/vip/hls", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("signed url without a credential: got %d, want 401", code)
	}
	code, _, body = n.do("GET", signed.URL, "", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: got %d %s", signed.URL, code, body)
	}
	// Every URL the playlist lists carries the token and works without a header.
	var media string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasSuffix(line, ".m3u8") || strings.Contains(line, ".m3u8?") {
			if !strings.HasPrefix(line, "#") {
				media = line
			}
		}
	}
	if !strings.Contains(media, "hls_token=") {
		t.Fatalf("media playlist URI %q lacks the token; playlist:\n%s", media, body)
	}
	if code, _, body := n.do("GET", "/hls/vip/"+media, "", "", nil); code != http.StatusOK {
		t.Errorf("media playlist with the token: got %d %s", code, body)
	}
	// The token is for vip only.
	u, _ := url.Parse(signed.URL)
	if code, _, _ := n.do("GET", "/hls/other/index.m3u8?"+u.RawQuery, "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("vip's token on another room: got %d, want 401", code)
	}
	// An expired signed URL, and one for an earlier incarnation of the room.
	expired := n.auth.GuestToken(hlsTokenID + "vip." + priv.Incarnation + "." + strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10))
	stale := n.auth.GuestToken(hlsTokenID + "vip.0ld." + strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	for name, tok := range map[string]string{"expired": expired, "other incarnation": stale} {
		if code, _, _ := n.do("GET", "/hls/vip/index.m3u8?hls_token="+url.QueryEscape(tok), "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s token: got %d, want 401", name, code)
		}
	}
	_ = other
}

// TestWHEPCodecUnsupported: a viewer offering only VP8 for a live H264 room
// gets 422 codec_unsupported naming the room's codecs.
func TestWHEPCodecUnsupported(t *testing.T) {
	n := hlsNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rm := n.createRoom("h264", false)
	n.goLive(ctx, rm)
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	_, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/h264", "").Signal, mediatest.ViewerOptions{VideoOnly: []webrtc.RTPCodecParameters{vp8}})
	var se *mediatest.StatusError
	if err == nil || !errors.As(err, &se) || se.Code != http.StatusUnprocessableEntity {
		t.Fatalf("VP8-only viewer: got %v, want 422", err)
	}
	var body struct {
		Error      struct{ Code string }
		RoomCodecs []string `json:"room_codecs"`
	}
	if err := json.Unmarshal([]byte(se.Body), &body); err != nil || body.Error.Code != "codec_unsupported" ||
		strings.Join(body.RoomCodecs, ",") != "H264,Opus" {
		t.Errorf("body %s: want codec_unsupported with room_codecs [H264 Opus]", se.Body)
	}
	// A viewer that can decode H264 still connects.
	v, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/h264", "").Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatalf("default viewer: %v", err)
	}
	v.Close()
}
