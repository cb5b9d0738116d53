package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
)

// TestWHEPFloodWorkload is the CI smoke of whepflood against the real
// binary with its default caps: a short flood from 127.0.0.7 is refused
// past unconnected_per_address (429 + Retry-After), the server holds at
// most that many unconnected sessions, and a viewer from 127.0.0.9 gets its
// keyframes during the flood without a refusal.
func TestWHEPFloodWorkload(t *testing.T) {
	s := proctest.Start(t, proctest.Options{DataDir: t.TempDir(), Env: []string{"LIVEROOM_ADMIN_KEY=" + testAdminKey,
		"LIVEROOM_JWT_SECRET=load-test-jwt-secret-0123456789", "LIVEROOM_MAX_CONNS_PER_IP=0", "LIVEROOM_REDIS_URL="}})
	streamKey := createRoom(t, s.Base, "flood")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := whepfloodCmd(ctx, []string{"--url", s.Base, "--room", "flood", "--n", "200", "--rate", "200", "--samples", "2",
		"--publish", streamKey, "--pid", strconv.Itoa(s.PID()), "--json"}, &out)
	if err != nil {
		t.Fatalf("whepflood: %v\n%s", err, out.String())
	}
	var res whepfloodResult
	if err := json.Unmarshal([]byte(out.String()[strings.Index(out.String(), "{"):]), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	t.Logf("%+v", res)
	const perAddress = 50 // media.DefaultUnconnectedPerAddress
	if res.Statuses["201"] > perAddress || res.Statuses["429"] < 200-perAddress || res.NoRetryAfter != 0 || res.Errors != 0 {
		t.Errorf("statuses %v, %d refusals without Retry-After, %d errors; want at most %d answered, the rest 429 with Retry-After",
			res.Statuses, res.NoRetryAfter, res.Errors, perAddress)
	}
	if res.UnconnectedPeak > perAddress+1 { // +1: the measured viewer's own, while it connects
		t.Errorf("unconnected sessions peaked at %v, want <= %d", res.UnconnectedPeak, perAddress+1)
	}
	if len(res.TTFKQuiet) != 2 || len(res.TTFKFlood) == 0 || res.ViewerRefusals != 0 {
		t.Errorf("viewer from another address: %d joins without, %d during the flood, %d refusals; want 2, >= 1, 0",
			len(res.TTFKQuiet), len(res.TTFKFlood), res.ViewerRefusals)
	}
	if res.RSSBeforeMB <= 0 || res.RSSGrowthMB > 150 {
		t.Errorf("server RSS %.1f MB before, growth %.1f MB; want a reading and growth under 150 MB", res.RSSBeforeMB, res.RSSGrowthMB)
	}
}
