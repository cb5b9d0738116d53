package record

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func putShow(t *testing.T, dir, roomID, id string, started time.Time, bytes int64, ended bool, playlist string) {
	t.Helper()
	sd := filepath.Join(dir, roomID, id)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	m := Meta{ID: id, Room: roomID, Scope: roomID, StartedAt: started, Bytes: bytes}
	if ended {
		e := started.Add(time.Hour)
		m.EndedAt = &e
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(sd, metaName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if playlist != "" {
		if err := os.WriteFile(filepath.Join(sd, playlistName), []byte(playlist), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(t *testing.T, l *Library, roomID string) []string {
	t.Helper()
	shows, err := l.List(roomID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range shows {
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return out
}

// TestLibrarySweep: retention by age, then by total bytes (oldest first);
// the show being recorded is never swept.
func TestLibrarySweep(t *testing.T) {
	now := time.Now().UTC()
	tests := []struct {
		name     string
		days     int
		maxBytes int64
		want     []string
	}{
		{"keep all", 0, 0, []string{"a-old", "b-mid", "c-new", "d-live"}},
		{"by age", 30, 0, []string{"b-mid", "c-new", "d-live"}},
		{"by bytes", 0, 250, []string{"c-new", "d-live"}},
		{"both", 30, 350, []string{"b-mid", "c-new", "d-live"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			putShow(t, dir, "r", "a-old", now.AddDate(0, 0, -40), 100, true, "")
			putShow(t, dir, "r", "b-mid", now.AddDate(0, 0, -10), 100, true, "")
			putShow(t, dir, "r", "c-new", now.AddDate(0, 0, -1), 100, true, "")
			putShow(t, dir, "r", "d-live", now.AddDate(0, 0, -50), 100, false, "") // being recorded
			l := NewLibrary(dir)
			if _, err := l.sweep(tc.days, tc.maxBytes, map[string]bool{"r/d-live": true}); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, l, "r"); !slices.Equal(got, tc.want) {
				t.Errorf("after sweep got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLibraryRecoverAndBadNames: a show a crash left open is closed at
// start (ENDLIST, ended_at, its duration from the playlist); names outside
// a show's media files are refused.
func TestLibraryRecoverAndBadNames(t *testing.T) {
	dir := t.TempDir()
	putShow(t, dir, "r", "open", time.Now(), 0, false,
		"#EXTM3U\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXTINF:2.000,\nseg-00001.m4s\n#EXTINF:1.500,\nseg-00002.m4s\n")
	l := NewLibrary(dir)
	n, err := l.recover()
	if err != nil || n != 1 {
		t.Fatalf("recover = %d, %v; want 1 show closed", n, err)
	}
	sh, err := l.Get("r", "open")
	if err != nil || !sh.Ended || sh.Stopped != "server_restart" || sh.DurationS != 3.5 {
		t.Fatalf("recovered show %+v, %v", sh, err)
	}
	pl, _ := os.ReadFile(filepath.Join(dir, "r", "open", playlistName))
	if !strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n") || strings.Count(string(pl), "seg-") != 2 {
		t.Errorf("recovered playlist:\n%s", pl)
	}
	for _, c := range []struct{ room, show, file string }{
		{"r", "open", "meta.json"}, {"r", "open", "../open/index.m3u8"}, {"r", "..", "index.m3u8"},
		{"..", "r", "index.m3u8"}, {"r", "open", "seg-1.m4s"}, {"r", "nope", "index.m3u8"}, {"R", "open", "index.m3u8"},
	} {
		if f, err := l.File(c.room, c.show, c.file); err == nil {
			f.Close()
			t.Errorf("File(%q, %q, %q) opened, want ErrNoShow", c.room, c.show, c.file)
		}
	}
	if err := l.Delete("r", "open"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get("r", "open"); err != ErrNoShow {
		t.Errorf("after delete: %v, want ErrNoShow", err)
	}
}

// TestLibraryChatAppliesModeration: the replayed chat leaves out messages
// deleted later and those of users banned later (and not unbanned).
func TestLibraryChatAppliesModeration(t *testing.T) {
	dir := t.TempDir()
	putShow(t, dir, "r", "s", time.Now(), 0, true, "")
	lines := []string{
		`{"t":1,"type":"chat.message","data":{"message":{"id":"m1","user":{"id":"ann","name":"Ann"},"text":"hello"}}}`,
		`{"t":2,"type":"chat.message","data":{"message":{"id":"m2","user":{"id":"bob","name":"Bob"},"text":"spam"}}}`,
		`{"t":3,"type":"chat.message","data":{"message":{"id":"m3","user":{"id":"cat","name":"Cat"},"text":"oops"}}}`,
		`{"t":4,"type":"chat.message","data":{"message":{"id":"m4","user":{"id":"dan","name":"Dan"},"text":"back"}}}`,
		`{"t":5,"type":"user.banned","data":{"user_id":"bob","until":null}}`,
		`{"t":6,"type":"chat.deleted","data":{"message_id":"m3"}}`,
		`{"t":7,"type":"user.banned","data":{"user_id":"dan","until":null}}`,
		`{"t":8,"type":"user.unbanned","data":{"user_id":"dan"}}`,
		`{"t":9,"type":"chat.mess`, // cut by a crash
	}
	if err := os.WriteFile(filepath.Join(dir, "r", "s", chatName), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	chat, err := NewLibrary(dir).Chat("r", "s")
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, e := range chat {
		got = append(got, e.T)
	}
	if want := []float64{1, 4}; !slices.Equal(got, want) {
		t.Errorf("replayed chat at %v, want %v (Ann's, and Dan's: unbanned)", got, want)
	}
}
