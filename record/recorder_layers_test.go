package record_test

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/media/mediatest"
	"liveroom/record"
)

// A simulcast host stops sending its top layer for a while (a browser does
// under CPU or uplink pressure) and sends it again: the recording goes on
// with the next layer from its keyframe, at its resolution (a new init
// segment after a discontinuity), keeps the short gap in its timeline
// instead of compressing it (audio went on), and returns to the top layer.
func TestRecorderFollowsLayerDrop(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe (ffmpeg) is needed: ", err)
	}
	g := newRig(t, "layers", record.Config{Segment: time.Second, Grace: 5 * time.Second}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	layers, err := mediatest.EncodeLayers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewLayeredPublisher(ctx, g.signal(), mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	time.Sleep(3 * time.Second)
	pub.DropLayer(layers[0].RID)
	time.Sleep(4 * time.Second)
	pub.ResumeLayer(layers[0].RID)
	time.Sleep(6 * time.Second) // the readers move back up after 3 s
	published := time.Since(began)
	_ = pub.Close()
	sh := g.end(t, ctx)

	pl, err := g.rec.Library().Playlist("layers", sh.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("show %.2f s of %.2f s published\n%s", sh.DurationS, published.Seconds(), pl)
	if d := sh.DurationS; d < published.Seconds()-3 || d > published.Seconds()+1 {
		t.Errorf("show of %.2f s for %.2f s published: the timeline lost or gained time at the moves", d, published.Seconds())
	}
	var widths []int
	for _, m := range regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindAllStringSubmatch(pl, -1) {
		f, err := g.rec.Library().File("layers", sh.ID, m[1])
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width",
			"-of", "csv=p=0", f.Name()).Output()
		f.Close()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", m[1], err)
		}
		w, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("ffprobe %s: width %q", m[1], out)
		}
		widths = append(widths, w)
	}
	want := []int{layers[0].Width, layers[1].Width, layers[0].Width}
	if len(widths) != 3 || widths[0] != want[0] || widths[1] != want[1] || widths[2] != want[2] {
		t.Errorf("init segments %v px wide, want %v: top layer, the next one while the top was not sent, the top again", widths, want)
	}
	if n := strings.Count(pl, "#EXT-X-DISCONTINUITY"); n != 2 {
		t.Errorf("%d discontinuities, want 2 (one per move)", n)
	}
}
