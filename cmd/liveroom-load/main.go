// Command liveroom-load drives a running liveroom server over its public
// interfaces (WHIP, WHEP, WebSocket, /metrics) and reports what it measured.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// workloads maps a subcommand to its runner.
var workloads = map[string]func(ctx context.Context, args []string, out io.Writer) error{
	"viewers":    viewersCmd,
	"publisher":  publisherCmd,
	"baseline":   baselineCmd,
	"chat":       chatCmd,      // WebSocket chat fan-out: deliveries/s, latency, CPU per 1,000 deliveries
	"idle":       idleCmd,      // idle WebSocket clients: server memory per connection
	"hub-server": hubServerCmd, // harness: the room hub and chat alone, to measure them
	"sale":       saleCmd,      // flash-sale storm over the WebSocket: oversell check, reservations/s, latency
	"failover":   failoverCmd,  // viewers behind a balancer while a node is killed or drained: outage per viewer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || workloads[os.Args[1]] == nil {
		names := make([]string, 0, len(workloads))
		for n := range workloads {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: liveroom-load <%v> [flags]   (liveroom-load <workload> -h for its flags)\n", names)
		os.Exit(2)
	}
	if err := workloads[os.Args[1]](ctx, os.Args[2:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "liveroom-load %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
