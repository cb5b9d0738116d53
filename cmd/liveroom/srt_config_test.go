package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// --srt sets srt.address; an empty value turns the SRT listener off, the
// default is :8890.
func TestSRTFlag(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ":8890"},
		{[]string{"--srt", ""}, ""},
		{[]string{"--srt", "127.0.0.1:9999"}, "127.0.0.1:9999"},
	} {
		c, err := parseServeFlags(tc.args, io.Discard, noEnv)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if c.SRT.Address != tc.want {
			t.Errorf("%v: srt.address %q, want %q", tc.args, c.SRT.Address, tc.want)
		}
	}
}

// A node listens for SRT when srt.address is set, and not when it is empty.
func TestSRTListenerOnOff(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", ""} {
		cfg := testConfig(t)
		cfg.SRT.Address = addr
		n, err := buildNode(cfg, prometheus.NewRegistry(), quietLog())
		if err != nil {
			t.Fatalf("srt.address %q: %v", addr, err)
		}
		if on := n.srtAddr != nil; on != (addr != "") {
			t.Errorf("srt.address %q: listening %v (%v)", addr, on, n.srtAddr)
		}
		n.start()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.stop(ctx)
		cancel()
	}
}
