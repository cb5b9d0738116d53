package record

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"liveroom/room/roomtest"
)

// The Redis manifest, on a real redis-server: a show's state and segments
// as nodes save them, the open show a moved host continues (its own
// incarnation only, never an ended one), its logs, and a cluster library
// over it that finds each file's holder and refuses bad names.
func TestRedisManifest(t *testing.T) {
	srv := roomtest.StartRedis(t)
	man := NewRedisManifest(srv.Client(t), "t:")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st := ShowState{Meta: Meta{ID: "s1", Room: "r", Scope: "r", StartedAt: time.Now().UTC()}, Node: "a", SegN: 2, InitN: 1,
		EndPTS: 2 * time.Second, Inits: map[int]string{1: "a"}}
	a := []SegmentRef{{Node: "a", Name: "seg-00001.m4s", Init: 1, Dur: time.Second}, {Node: "a", Name: "seg-00002.m4s", Init: 1, Dur: time.Second, Start: time.Second}}
	if err := man.Save(ctx, st, a); err != nil {
		t.Fatal(err)
	}
	if err := man.AppendLog(ctx, "r", "s1", scriptName, []byte(`{"t":1,"type":"product.pinned","data":{"product":{"sku":"x","title":"X"}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := man.AppendLog(ctx, "r", "s1", "meta.json", []byte("{}")); err == nil {
		t.Error("a log named meta.json was accepted")
	}
	for _, tc := range []struct {
		scope string
		want  bool
	}{{"r", true}, {"r~2", false}} {
		got, ok, err := man.Current(ctx, "r", tc.scope)
		if err != nil || ok != tc.want || (ok && (got.ID != "s1" || got.SegN != 2 || got.EndPTS != 2*time.Second)) {
			t.Errorf("Current(%q) = %+v %v %v, want found %v with seg 2 ending at 2 s", tc.scope, got, ok, err, tc.want)
		}
	}

	// b continues it and ends it.
	st.Node, st.SegN, st.InitN, st.EndPTS, st.Inits[2] = "b", 3, 2, 3*time.Second, "b"
	now := time.Now().UTC()
	st.EndedAt = &now
	if err := man.Save(ctx, st, []SegmentRef{{Node: "b", Name: "seg-00003.m4s", Init: 2, Dur: time.Second, Start: 2 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := man.Current(ctx, "r", "r"); ok {
		t.Error("an ended show is still current")
	}
	_, segs, err := man.Get(ctx, "r", "s1")
	if err != nil || len(segs) != 3 || segs[2].Node != "b" || segs[2].Start != 2*time.Second {
		t.Fatalf("segments %+v %v, want 3, the last on b at 2 s", segs, err)
	}

	local := &Library{dir: t.TempDir()}
	_ = os.MkdirAll(filepath.Join(local.dir, "r", "s1"), 0o755)
	lib := NewClusterLibrary(local, man, "c", nil)
	for _, tc := range []struct{ name, want string }{
		{"seg-00001.m4s", "a"}, {"seg-00003.m4s", "b"}, {"init-1.mp4", "a"}, {"init-2.mp4", "b"},
		{"seg-00009.m4s", ""}, {"init-9.mp4", ""}, {"meta.json", ""}, {"../x", ""},
	} {
		got, err := lib.Holder(ctx, "r", "s1", tc.name)
		if got != tc.want || (tc.want == "" && !errors.Is(err, ErrNoShow)) {
			t.Errorf("Holder(%s) = %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	sh, err := lib.Get("r", "s1")
	if err != nil || !sh.Ended || len(sh.Chapters) != 1 || sh.Chapters[0].Title != "X" || sh.DurationS != 3 {
		t.Errorf("Get = %+v %v, want ended, one chapter X, 3 s", sh, err)
	}
	pl, err := lib.Playlist("r", "s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, ended := parsePlaylist(pl)
	if len(entries) != 3 || !ended || entries[2].init != 2 {
		t.Errorf("playlist %q, want 3 segments, the last behind init 2, ended", pl)
	}
	if _, err := lib.Get("r", "../s1"); !errors.Is(err, ErrNoShow) {
		t.Errorf("Get(../s1) = %v, want ErrNoShow", err)
	}
	if err := lib.Delete("r", "s1"); err != nil {
		t.Fatal(err)
	}
	if shows, err := lib.List("r"); err != nil || len(shows) != 0 {
		t.Errorf("after delete: %+v %v, want none", shows, err)
	}
	if _, err := lib.Playlist("r", "s1", nil); !errors.Is(err, ErrNoShow) {
		t.Errorf("deleted show's playlist: %v, want ErrNoShow", err)
	}
}

// BenchmarkRedisManifestSave: one segment's save (state + RPUSH, one
// MULTI), as a recording node does per segment; reports the Redis memory a
// segment's entry takes.
func BenchmarkRedisManifestSave(b *testing.B) {
	srv := roomtest.StartRedis(b)
	rdb := srv.Client(b)
	man := NewRedisManifest(rdb, "b:")
	ctx := context.Background()
	st := ShowState{Meta: Meta{ID: "s1", Room: "r", Scope: "r", StartedAt: time.Now().UTC()}, Node: "node-1", Inits: map[int]string{1: "node-1"}}
	b.ResetTimer()
	for i := range b.N {
		st.SegN = i + 1
		seg := SegmentRef{Node: "node-1", Name: "seg-00001.m4s", Init: 1, Dur: 2 * time.Second, Start: time.Duration(i) * 2 * time.Second}
		if err := man.Save(ctx, st, []SegmentRef{seg}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if mem, err := rdb.MemoryUsage(ctx, "b:rec:r:s1:segs").Result(); err == nil && b.N > 100 {
		b.ReportMetric(float64(mem)/float64(b.N), "redis-bytes/segment")
	}
}
