package main

import (
	"bytes"
	"context"
	"testing"
)

// TestWSFloodWorkload is the CI smoke of wsflood against the real binary:
// the flooders are cut off by the server, the probe is answered with and
// without the flood, and the server's memory is read.
func TestWSFloodWorkload(t *testing.T) {
	base := startServer(t)
	createRoom(t, base, "flood")
	var r wsfloodResult
	runJSON(t, func(ctx context.Context, a []string, out *bytes.Buffer) error { return wsfloodCmd(ctx, a, out) },
		[]string{"--url", base, "--room", "flood", "--admin-key", testAdminKey,
			"--flooders", "2", "--duration", "4s", "--quiet", "1s"}, &r)
	cut := r.FloodCloses["4009"] + r.FloodCloses["4008"]
	if cut < 1 || r.FramesSent == 0 {
		t.Fatalf("no flooder was cut off (4009/4008): %+v", r)
	}
	if r.QuietSamples == 0 || r.FloodSamples == 0 || r.RSSBeforeMB <= 0 || r.RSSPeakMB <= 0 {
		t.Fatalf("probe or server figures missing: %+v", r)
	}
	t.Logf("%+v", r)
}
