package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/room/roomtest"
)

// A cluster node says at startup, and in /readyz, whether its Redis keeps
// an append-only file; with redis.require_aof one that does not is refused.
func TestRedisPersistenceReported(t *testing.T) {
	cases := []struct {
		name       string
		persistent bool
		requireAOF bool
		verdict    string // "" = the node must refuse to start
		logLevel   string
	}{
		{name: "appendonly no", verdict: "not_durable", logLevel: "WARN"},
		{name: "appendonly yes", persistent: true, verdict: "durable", logLevel: "INFO"},
		{name: "appendonly no, require_aof", requireAOF: true},
		{name: "appendonly yes, require_aof", persistent: true, requireAOF: true, verdict: "durable", logLevel: "INFO"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := roomtest.StartRedis
			if tc.persistent {
				srv = roomtest.StartPersistentRedis
			}
			cfg := testConfig(t)
			cfg.Redis.URL = srv(t).URL()
			cfg.Redis.RequireAOF = tc.requireAOF
			logs := &netifTestLog{}
			n, err := buildNode(cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil)))
			if tc.verdict == "" {
				if err == nil || !strings.Contains(err.Error(), "redis.require_aof") {
					t.Fatalf("got err %v, want a refusal naming redis.require_aof", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n.start()
			web := httptest.NewServer(n.web)
			t.Cleanup(func() {
				web.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				n.stop(ctx)
			})

			line := ""
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "redis persistence") {
					line = l
				}
			}
			if !strings.Contains(line, "level="+tc.logLevel) || !strings.Contains(line, "verdict="+tc.verdict) {
				t.Errorf("startup log: got %q, want a %s line with verdict=%s", line, tc.logLevel, tc.verdict)
			}

			resp, err := http.Get(web.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || body["status"] != "ready" {
				t.Fatalf("/readyz: got %d %v, want 200 ready (persistence only warns)", resp.StatusCode, body)
			}
			if body["redis_persistence"] != tc.verdict || !strings.Contains(body["redis_persistence_detail"], "CONFIG GET") {
				t.Errorf("/readyz: got %v, want redis_persistence %s read with CONFIG GET", body, tc.verdict)
			}
			// Redis runs on this machine: the same clock, to the round trip.
			if ms, err := strconv.Atoi(body["redis_clock_skew_ms"]); err != nil || ms < -500 || ms > 500 {
				t.Errorf("/readyz: redis_clock_skew_ms %q, want about 0", body["redis_clock_skew_ms"])
			}
			if !strings.Contains(logs.String(), "node clock against Redis' TIME") {
				t.Error("no startup line with the node's clock skew")
			}
		})
	}
}
