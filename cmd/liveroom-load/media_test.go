package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestViewersWorkload is the CI smoke of the media workloads: against the
// real server, the tool publishes the test clip and three viewers get a
// keyframe; the report carries the server-side figures from /metrics.
func TestViewersWorkload(t *testing.T) {
	base := startServer(t)
	streamKey := createRoom(t, base, "smoke")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := viewersCmd(ctx, []string{"--url", base, "--room", "smoke", "--n", "3", "--publish", streamKey, "--duration", "2s", "--json"}, &out)
	if err != nil {
		t.Fatalf("viewers: %v\n%s", err, out.String())
	}
	js := out.String()[strings.Index(out.String(), "{"):]
	var res viewersResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if res.Joined != 3 || res.KeyframeWithSPS != 3 || res.PacketsForwarded <= 0 || res.ServerCPUSeconds <= 0 || res.BaselineSendUs <= 0 {
		t.Fatalf("got %+v; want 3 joined with SPS/PPS keyframes, packets forwarded, server CPU and a baseline", res)
	}
}

// createRoom creates a room through the admin API and returns its stream key.
func createRoom(t *testing.T, base, id string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/rooms", strings.NewReader(`{"id":"`+id+`","title":"`+id+`"}`))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rm struct {
		StreamKey string `json:"stream_key"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &rm) != nil {
		t.Fatalf("create room: %d %s", resp.StatusCode, body)
	}
	return rm.StreamKey
}
