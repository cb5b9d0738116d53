// Command liveroom-load drives a running liveroom server over its public
// interfaces (WHIP, WHEP, WebSocket, /metrics) and reports what it measured.
package main

import (
	"context"
	"errors"
	"flag"
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
	"whepflood":  whepfloodCmd,
	"publisher":  publisherCmd,
	"baseline":   baselineCmd,
	"chat":       chatCmd,
	"idle":       idleCmd,
	"hub-server": hubServerCmd,
	"sale":       saleCmd,
	"lapse":      lapseCmd,
	"failover":   failoverCmd,
	"wsflood":    wsfloodCmd,
	"hls":        hlsCmd,      // hls.go
	"giveaway":   giveawayCmd, // giveaway.go
	"auction":    auctionCmd,
}

// workloadHelp is the one-line description --help prints for each workload.
var workloadHelp = map[string]string{
	"viewers":    "WHEP viewers of a published room: join time, CPU per forwarded packet, loss",
	"whepflood":  "never-connecting WHEP offers from one address: refusals, server RSS and goroutines, another viewer's time to keyframe",
	"publisher":  "publish a clip over WHIP and keep it running",
	"baseline":   "CPU of one loopback UDP send, the yardstick for media costs",
	"chat":       "WebSocket chat fan-out: deliveries/s, latency, CPU per 1,000 deliveries",
	"idle":       "idle WebSocket clients: server memory per connection",
	"hub-server": "harness: the room hub and chat alone, to measure them",
	"sale":       "flash-sale storm over the WebSocket: oversell check, reservations/s, latency",
	"lapse":      "flash sale whose unpaid orders lapse: units back on sale once, bought again, paid/s through the admin API",
	"failover":   "viewers behind a balancer while a node is killed or drained: outage per viewer",
	"wsflood":    "WebSocket clients sending resume and cart.add without reading: server RSS, goroutines, refusals, a normal client's latency",
	"hls":        "LL-HLS players polling playlists and parts: server CPU, part-ready delay",
	"giveaway":   "entrants storm one giveaway over the WebSocket: entries/s, latency, and the published draw recomputed from docs/giveaway-draw.md",
	"auction":    "live-auction storm over the WebSocket (one or more nodes): winner, one order, extensions, accepted bids/s, last-second latency",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command without the process around it; it returns the exit
// code: 0 for help, 2 for a usage error, 1 for a failed workload.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			usage(stdout)
			return 0
		}
	}
	if len(args) < 1 || workloads[args[0]] == nil {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "liveroom-load: unknown workload %q\n", args[0])
		}
		usage(stderr)
		return 2
	}
	if err := workloads[args[0]](ctx, args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // the flag set has printed the workload's flags
		}
		fmt.Fprintf(stderr, "liveroom-load %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	names := make([]string, 0, len(workloads))
	for n := range workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "usage: liveroom-load <workload> [flags]   (liveroom-load <workload> -h for its flags)\n\nworkloads:\n")
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, workloadHelp[n])
	}
}
