package web

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/record"
	"liveroom/room"
)

// writeShow lays a recorded show out on disk the way the recorder does.
func writeShow(t *testing.T, dir string, rm room.Room, id string) {
	t.Helper()
	sd := filepath.Join(dir, rm.ID, id)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	meta, _ := json.Marshal(record.Meta{ID: id, Room: rm.ID, Scope: rm.Scope(), StartedAt: now, EndedAt: &now, DurationS: 2, Bytes: 2000})
	files := map[string]string{
		"meta.json":     string(meta),
		"index.m3u8":    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXTINF:2.000,\nseg-00001.m4s\n#EXT-X-ENDLIST\n",
		"init-1.mp4":    strings.Repeat("i", 500),
		"seg-00001.m4s": strings.Repeat("s", 1500),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(sd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShowsPrivateSignedURLs: a private room's shows are listed only to
// whoever may watch it, with a signed playlist URL; the playlist's segment
// URLs are signed too; a missing, forged, expired or reused signature is
// refused; a public room's replay needs none.
func TestShowsPrivateSignedURLs(t *testing.T) {
	dir := t.TempDir()
	n := newTestNode(t, func(d *Deps) {
		d.Shows = record.NewLibrary(dir)
		d.ReplaySecret = []byte("replay-secret-0123456789")
	})
	priv := n.createRoom("priv", true)
	pub := n.createRoom("pub", false)
	writeShow(t, dir, priv, "s1")
	writeShow(t, dir, pub, "s2")

	if code, _, _ := n.do("GET", "/api/v1/rooms/priv/shows", "", "", nil); code != 404 {
		t.Errorf("private shows without a token: %d, want 404", code)
	}
	if code, _, _ := n.do("GET", "/replay/priv/s1/index.m3u8", "", "", nil); code != 403 {
		t.Errorf("private playlist unsigned: %d, want 403", code)
	}
	code, _, body := n.do("GET", "/api/v1/rooms/priv/shows", n.token("v", room.RoleViewer, "priv"), "", nil)
	var list struct {
		Shows []struct{ ID, Playlist string }
	}
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Shows) != 1 {
		t.Fatalf("private shows with a viewer token: %d %s", code, body)
	}
	pl := list.Shows[0].Playlist
	if !strings.Contains(pl, "sig=") || !strings.Contains(pl, "exp=") {
		t.Fatalf("playlist URL %q is not signed", pl)
	}
	code, _, body = n.do("GET", pl, "", "", nil)
	if code != 200 {
		t.Fatalf("signed playlist: %d %s", code, body)
	}
	var seg, init string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "seg-00001.m4s?") {
			seg = line
		}
		if strings.HasPrefix(line, "#EXT-X-MAP:URI=\"init-1.mp4?") {
			init = strings.TrimSuffix(strings.TrimPrefix(line, "#EXT-X-MAP:URI=\""), "\"")
		}
	}
	if seg == "" || init == "" {
		t.Fatalf("playlist has no signed segment and init URLs:\n%s", body)
	}
	if code, _, b := n.do("GET", "/replay/priv/s1/"+seg, "", "", nil); code != 200 || len(b) != 1500 {
		t.Errorf("signed segment: %d, %d bytes", code, len(b))
	}
	if code, _, _ := n.do("GET", "/replay/priv/s1/"+init, "", "", nil); code != 200 {
		t.Errorf("signed init: %d", code)
	}
	q, _ := url.ParseQuery(strings.SplitN(seg, "?", 2)[1])
	forged := url.Values{"exp": q["exp"], "sig": {strings.Repeat("A", len(q.Get("sig")))}}
	expired := url.Values{"exp": {strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)}, "sig": q["sig"]}
	for name, path := range map[string]string{
		"forged":                                 "/replay/priv/s1/seg-00001.m4s?" + forged.Encode(),
		"expired":                                "/replay/priv/s1/seg-00001.m4s?" + expired.Encode(),
		"the segment's sig, reused for the init": "/replay/priv/s1/init-1.mp4?" + q.Encode(),
	} {
		if code, _, _ := n.do("GET", path, "", "", nil); code != 403 {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	// A public room's replay is public.
	if code, _, _ := n.do("GET", "/replay/pub/s2/seg-00001.m4s", "", "", nil); code != 200 {
		t.Errorf("public segment: %d", code)
	}
	// A show of an earlier incarnation of the room is not this room's.
	if code, _, b := n.do("DELETE", "/api/v1/rooms/pub", testAdminKey, "", nil); code/100 != 2 {
		t.Fatalf("delete room: %d %s", code, b)
	}
	n.createRoom("pub", false)
	code, _, body = n.do("GET", "/api/v1/rooms/pub/shows", "", "", nil)
	if code != 200 || strings.Contains(string(body), "s2") {
		t.Errorf("the new room lists the old room's show: %d %s", code, body)
	}
	if code, _, _ := n.do("GET", "/api/v1/rooms/pub/shows/s2", "", "", nil); code != 404 {
		t.Errorf("old incarnation's show: %d, want 404", code)
	}
}
