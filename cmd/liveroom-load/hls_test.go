package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestHLSWorkload is the CI smoke of the hls workload: against the real
// server, the tool publishes the test clip and two LL-HLS players fetch
// parts through blocking playlist reloads; the report carries the
// server's CPU and part-ready figures.
func TestHLSWorkload(t *testing.T) {
	base := startServer(t)
	streamKey := createRoom(t, base, "hlssmoke")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := hlsCmd(ctx, []string{"--url", base, "--room", "hlssmoke", "--n", "2", "--publish", streamKey, "--duration", "3s", "--json"}, &out)
	if err != nil {
		t.Fatalf("hls: %v\n%s", err, out.String())
	}
	js := out.String()[strings.Index(out.String(), "{"):]
	var res hlsResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if res.Started != 2 || res.Parts < 4 || res.PartBytes <= 0 || res.ServerCPUSeconds <= 0 || res.PartReadyMax == 0 {
		t.Fatalf("got %+v; want 2 players fetching parts, server CPU and part-ready figures", res)
	}
}
