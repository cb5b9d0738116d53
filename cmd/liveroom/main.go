// Command liveroom runs the liveroom server (`liveroom serve`, the default)
// and mints tokens (`liveroom token`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `liveroom: livestream shopping rooms

usage:
  liveroom [serve] [--config FILE] [--http ADDR] [--rtsp ADDR] [--rtsp-udp PORT]
                   [--rtmp ADDR] [--rtmps ADDR --rtmps-cert FILE --rtmps-key FILE] [--srt ADDR]
                   [--webrtc-port N] [--data-dir DIR] [--redis URL] [--node-id ID]
                   [--advertise-url URL] [--dev]
  liveroom token --room ROOM --role viewer|moderator|host|admin --sub ID [--name NAME] [--ttl 24h] [--config FILE]

environment: LIVEROOM_JWT_SECRET, LIVEROOM_ADMIN_KEY, LIVEROOM_REDIS_URL,
LIVEROOM_MAX_CONNS_PER_IP, LIVEROOM_HTTP, LIVEROOM_PUBLIC_URL, LIVEROOM_DATA_DIR, LIVEROOM_NODE_ID,
LIVEROOM_ADVERTISE_URL, LIVEROOM_CLUSTER_SECRET, LIVEROOM_TRUSTED_PROXIES,
LIVEROOM_WEBRTC_LISTEN_IP, LIVEROOM_WEBRTC_NAT_1TO1_IPS
`

// errTerminated is the cause of the serve context's end on SIGTERM (what a
// service manager or an orchestrator sends): the node drains first (web.Drain.Run).
// SIGINT (Ctrl-C) stops at once. A second signal kills the process.
var errTerminated = errors.New("terminated (SIGTERM)")

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		signal.Stop(sigs) // the next signal has its default effect
		if sig == syscall.SIGTERM {
			cancel(errTerminated)
		} else {
			cancel(errors.New("interrupted"))
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	cancel(nil)
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stdout, stderr, getenv)
	case "token":
		err = token(args, stdout, stderr, getenv)
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "liveroom: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "liveroom %s: %v\n", cmd, err)
		return 1
	}
	return 0
}
