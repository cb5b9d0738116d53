package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// runJSON runs a workload with --json and decodes its report.
func runJSON(t *testing.T, cmd func(context.Context, []string, *bytes.Buffer) error, args []string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := cmd(ctx, append(args, "--json"), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	if err := json.Unmarshal([]byte(s[strings.Index(s, "{"):]), v); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, s)
	}
}

// TestChatAndIdleWorkloads is the CI smoke of the WebSocket workloads
// against the real server: every chat message reaches every client, and the
// idle workload reports memory per connection.
func TestChatAndIdleWorkloads(t *testing.T) {
	base := startServer(t)
	createRoom(t, base, "chat")
	common := []string{"--url", base, "--room", "chat", "--admin-key", testAdminKey}

	var chat chatResult
	runJSON(t, func(ctx context.Context, a []string, out *bytes.Buffer) error { return chatCmd(ctx, a, out) },
		// 40 senders at chat.chat_rate (1/s each): enough work in the window
		// that the server's CPU counter, in 10 ms ticks, moves (8 messages
		// once read 0 s).
		append(common, "--clients", "40", "--senders", "40", "--rate", "40", "--duration", "3s", "--warmup", "1s"), &chat)
	t.Logf("chat: %d deliveries in the window, server CPU %.3f s", chat.Deliveries, chat.ServerCPUSeconds)
	if chat.Connected != 40 || chat.Sent == 0 || chat.Deliveries == 0 || chat.DeliveredPct < 99.9 || chat.CPUPer1000ms <= 0 {
		t.Fatalf("chat: got %+v; want 40 connected, every message delivered, a CPU figure", chat)
	}

	var idle idleResult
	runJSON(t, func(ctx context.Context, a []string, out *bytes.Buffer) error { return idleCmd(ctx, a, out) },
		append(common, "--clients", "50", "--settle", "1s"), &idle)
	// 50 connections are too few for the memory delta to beat GC noise
	// (the full run uses 5,000); the smoke checks the tool reads the server.
	if idle.Connected != 50 || idle.RSSBeforeMB <= 0 || idle.RSSAfterMB <= 0 {
		t.Fatalf("idle: got %+v; want 50 connected and the server's RSS read from /metrics", idle)
	}
}
