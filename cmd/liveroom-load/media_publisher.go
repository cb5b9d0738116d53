package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"liveroom/media/mediatest"
)

// publisherCmd publishes an H264 + Opus clip to a room over WHIP at
// real-time pace, answering keyframe requests like an encoder would.
func publisherCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	roomID := fs.String("room", "demo", "room id")
	key := fs.String("key", "", "stream key or host token (required)")
	clipDir := fs.String("clip", "", "directory with clip.h264 (no B-frames), clip.ivf and clip.ogg (default: media/testdata)")
	d := fs.Duration("duration", 0, "stop after this long; 0 = until interrupted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("--key is required")
	}
	clip, err := mediatest.LoadClip(*clipDir)
	if err != nil {
		return err
	}
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(strings.TrimRight(*base, "/")+"/whip/"+*roomID, *key).Signal, mediatest.PublisherOptions{Clip: clip})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "publishing to %s/%s (%d frames, %d audio packets in the loop)\n", *base, *roomID, len(clip.H264), len(clip.Opus))
	var stop <-chan time.Time
	if *d > 0 {
		stop = time.After(*d)
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-tick.C:
			fmt.Fprintf(out, "  frames sent %d, keyframe requests %d\n", pub.Frames(), pub.PLIs())
		}
	}
}

// baselineCmd prints this machine's loopback UDP send cost.
func baselineCmd(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	size := fs.Int("size", 1200, "datagram size in bytes")
	count := fs.Int("count", 200000, "datagrams to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cost, err := udpSendCost(*size, *count, false)
	if err != nil {
		return err
	}
	read, err := udpSendCost(*size, *count, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "one %d-byte loopback UDP send: %.2f µs CPU (nobody reading), %.2f µs (a reader draining it)\n",
		*size, cost.Seconds()*1e6, read.Seconds()*1e6)
	return nil
}
