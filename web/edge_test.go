package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
	"liveroom/room"
)

var testClusterSecret = []byte("cluster-secret-0123456789")

// The node-to-node route: only a valid cluster token for the room gets in
// (and learns nothing before), only an origin (a node with the room's host)
// serves a pull, and the pull is a WHEP-like session that DELETE ends.
func TestEdgeRoute(t *testing.T) {
	n := newTestNode(t, func(d *Deps) { d.ClusterSecret = testClusterSecret })
	rm := n.createRoom("show", false)
	sdp := []byte(offer(t, webrtc.RTPTransceiverDirectionRecvonly, nil))
	now := time.Now()
	path := "/internal/v1/edge/show"

	for name, c := range map[string]struct {
		path, token string
		want        int
	}{
		"no token":             {path, "", http.StatusUnauthorized},
		"viewer token":         {path, n.token("v", room.RoleViewer, "show"), http.StatusUnauthorized},
		"admin key":            {path, testAdminKey, http.StatusUnauthorized},
		"other room's token":   {path, room.ClusterToken(testClusterSecret, "b", "other", now), http.StatusUnauthorized},
		"stale token":          {path, room.ClusterToken(testClusterSecret, "b", "show", now.Add(-2*time.Minute)), http.StatusUnauthorized},
		"unknown room, no tok": {"/internal/v1/edge/nope", "", http.StatusUnauthorized},
		"unknown room":         {"/internal/v1/edge/nope", room.ClusterToken(testClusterSecret, "b", "nope", now), http.StatusNotFound},
		"not the origin":       {path, room.ClusterToken(testClusterSecret, "b", "show", now), http.StatusConflict},
	} {
		status, _, body := n.do("POST", c.path, c.token, "application/sdp", sdp)
		if status != c.want {
			t.Errorf("%s: got %d %s, want %d", name, status, body, c.want)
			continue
		}
		if c.want == http.StatusConflict && errorCode(t, body) != "not_origin" {
			t.Errorf("%s: code %q, want not_origin", name, errorCode(t, body))
		}
	}

	// With a host live here, a pull gets an answer and a session that a
	// DELETE of its Location ends.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/show", rm.StreamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	status, h, body := n.do("POST", path, room.ClusterToken(testClusterSecret, "b", "show", time.Now()), "application/sdp", sdp)
	if status != http.StatusCreated || len(body) == 0 || h.Get("Location") == "" {
		t.Fatalf("pull from the origin: %d %q %s", status, h.Get("Location"), body)
	}
	if got := n.sfu.Viewers("show"); got != 0 {
		t.Errorf("viewers: %d, want 0 (an edge is not a viewer)", got)
	}
	if status, _, body := n.do("DELETE", h.Get("Location"), "", "", nil); status != http.StatusOK {
		t.Fatalf("DELETE the pull: %d %s", status, body)
	}
}

// Without a cluster secret (one node) the route does not exist.
func TestEdgeRouteSingleNode(t *testing.T) {
	n := newTestNode(t)
	n.createRoom("show", false)
	status, _, _ := n.do("POST", "/internal/v1/edge/show", room.ClusterToken(testClusterSecret, "b", "show", time.Now()), "application/sdp", []byte("v=0\r\n"))
	if status != http.StatusNotFound {
		t.Fatalf("got %d, want 404", status)
	}
}
