package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
)

// viewersResult is what the viewers workload reports.
type viewersResult struct {
	Viewers           int     `json:"viewers"`
	Joined            int     `json:"joined"`
	Failed            int     `json:"failed"`
	Refused           int     `json:"refused_then_retried"` // 429/503 from a session cap
	AllJoinedSeconds  float64 `json:"all_joined_seconds"`   // first POST to the last first keyframe, retries included
	KeyframeP50ms     float64 `json:"first_keyframe_p50_ms"`
	KeyframeP95ms     float64 `json:"first_keyframe_p95_ms"`
	KeyframeP99ms     float64 `json:"first_keyframe_p99_ms"`
	KeyframeMaxms     float64 `json:"first_keyframe_max_ms"`
	KeyframeWithSPS   int     `json:"first_keyframe_with_sps_pps"`
	ClientSetupP50ms  float64 `json:"client_setup_before_post_p50_ms"`
	ClientSetupP95ms  float64 `json:"client_setup_before_post_p95_ms"`
	RecvKbps          float64 `json:"received_kbps_per_viewer"`
	LossPct           float64 `json:"video_loss_pct"`
	Freezes           int     `json:"freezes"` // video gaps over 500 ms while live
	SteadySeconds     float64 `json:"steady_seconds"`
	PacketsForwarded  float64 `json:"server_packets_forwarded"`
	ServerCPUSeconds  float64 `json:"server_cpu_seconds"`
	CPUPerPacketUs    float64 `json:"server_cpu_per_forwarded_packet_us"`
	BaselineSendUs    float64 `json:"baseline_udp_send_us"`
	CPURatio          float64 `json:"cpu_per_packet_over_udp_send"`
	BaselineReadUs    float64 `json:"baseline_udp_send_read_us"`
	CPURatioRead      float64 `json:"cpu_per_packet_over_udp_send_read"`
	RSSBeforeMB       float64 `json:"server_rss_before_mb"`
	RSSAfterMB        float64 `json:"server_rss_after_mb"`
	RSSPerViewerKB    float64 `json:"server_rss_per_viewer_kb"`
	ServerNACKs       float64 `json:"server_nacks_received"`
	ServerRetransmits float64 `json:"server_retransmits"`
	ServerDropped     float64 `json:"server_packets_dropped"`

	// The first keyframe's wait split in two: connecting (POST to the first
	// media packet) and waiting for a keyframe once media flows.
	FirstPacketP50ms float64 `json:"first_packet_p50_ms"`
	FirstPacketP95ms float64 `json:"first_packet_p95_ms"`
	PacketToKeyP50ms float64 `json:"first_packet_to_keyframe_p50_ms"`
	PacketToKeyP95ms float64 `json:"first_packet_to_keyframe_p95_ms"`
}

// viewersCmd runs N WHEP viewers against a room (optionally publishing to it
// first) and reports join latency, what they received, and what it cost the
// server, read from its /metrics.
func viewersCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("viewers", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	roomID := fs.String("room", "demo", "room id")
	token := fs.String("token", "", "viewer token (private rooms)")
	n := fs.Int("n", 50, "viewers")
	rate := fs.Float64("rate", 0, "joins per second; 0 = all at once")
	steady := fs.Duration("duration", 20*time.Second, "how long to measure once everyone has joined")
	publishKey := fs.String("publish", "", "stream key or host token: also publish the clip to the room")
	publishURL := fs.String("publish-url", "", "cluster: publish to this node (the origin) instead of --url, so that --url serves its viewers as an edge")
	clipDir := fs.String("clip", "", "directory with clip.h264 (no B-frames), clip.ivf and clip.ogg for --publish (default: media/testdata)")
	tcp := fs.Bool("tcp", false, "viewers use ICE-TCP")
	asJSON := fs.Bool("json", false, "print JSON")
	rtspKey := fs.String("rtsp-publish", "", "stream key: publish a test pattern to the room over RTSP with ffmpeg (a source that cannot be asked for keyframes)")
	rtspOpts := rtspPublishOptions{URL: "rtsp://127.0.0.1:8554", GOP: 2 * time.Second, Bitrate: 2500, Size: "1280x720", FPS: 30}
	fs.StringVar(&rtspOpts.URL, "rtsp-url", rtspOpts.URL, "server RTSP address for --rtsp-publish")
	fs.DurationVar(&rtspOpts.GOP, "rtsp-gop", rtspOpts.GOP, "keyframe interval of the --rtsp-publish stream")
	fs.IntVar(&rtspOpts.Bitrate, "rtsp-kbps", rtspOpts.Bitrate, "bitrate of the --rtsp-publish stream (kbit/s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("--n must be at least 1")
	}
	*base = strings.TrimRight(*base, "/")

	baseline, err := udpSendCost(1200, 50000, false)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	baselineRead, err := udpSendCost(1200, 50000, true)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if *publishKey != "" {
		clip, err := mediatest.LoadClip(*clipDir)
		if err != nil {
			return err
		}
		origin := *base
		if *publishURL != "" {
			origin = strings.TrimRight(*publishURL, "/")
		}
		pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(origin+"/whip/"+*roomID, *publishKey).Signal, mediatest.PublisherOptions{Clip: clip})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		defer pub.Close()
		if err := pub.WaitConnected(ctx); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		fmt.Fprintf(out, "publishing %s to %s\n", clipName(*clipDir), *roomID)
		time.Sleep(2 * time.Second) // let the room settle before measuring
	}

	if *rtspKey != "" {
		rtspOpts.Room, rtspOpts.Key = *roomID, *rtspKey
		pub, err := startRTSPPublisher(ctx, rtspOpts)
		if err != nil {
			return err
		}
		defer pub.Close()
		time.Sleep(3 * time.Second) // connect and fill a GOP
		if pub.Exited() {
			return fmt.Errorf("rtsp publish ended: %s", pub.Stderr())
		}
		fmt.Fprintf(out, "publishing a %v-GOP %d kbit/s test pattern over RTSP to %s\n", rtspOpts.GOP, rtspOpts.Bitrate, *roomID)
	}

	m0, err := scrapeMetrics(ctx, *base)
	if err != nil {
		return err
	}
	var api *webrtc.API
	if *tcp {
		if api, err = mediatest.NewAPI(webrtc.NetworkTypeTCP4); err != nil {
			return err
		}
	} else if api, err = mediatest.NewAPI(); err != nil {
		return err
	}

	viewers := make([]*mediatest.Viewer, *n)
	errs := make([]error, *n)
	posted := make([]time.Time, *n)
	var refused atomic.Int64 // offers refused by a cap, then retried
	var wg sync.WaitGroup
	joinStart := time.Now()
	interval := time.Duration(0)
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	for i := range viewers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				// The clock starts when the WHEP POST goes out (the issue's
				// measure); the client's own setup before it is reported apart.
				whep := mediatest.WHEP(*base+"/whep/"+*roomID, *token)
				signal := func(ctx context.Context, offer string) (string, error) {
					posted[i] = time.Now()
					return whep.Signal(ctx, offer)
				}
				v, err := mediatest.NewViewer(jctx, signal, mediatest.ViewerOptions{API: api})
				if err == nil {
					_, err = v.WaitFor(jctx, func(s mediatest.ViewerStats) bool { return !s.FirstKeyframeAt.IsZero() })
				}
				cancel()
				// A node at a session cap (webrtc.limits) refuses with 429 or
				// 503 + Retry-After (2 s for joins in flight); like the viewer
				// page, try again after it, with jitter. The join time is the
				// attempt that got in; the refusals are reported.
				var se *mediatest.StatusError
				if errors.As(err, &se) && (se.Code == http.StatusTooManyRequests || se.Code == http.StatusServiceUnavailable) && ctx.Err() == nil {
					refused.Add(1)
					time.Sleep(2*time.Second + rand.N(2*time.Second))
					continue
				}
				viewers[i], errs[i] = v, err
				return
			}
		}(i)
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	wg.Wait()
	defer func() {
		for _, v := range viewers {
			if v != nil {
				v.Close()
			}
		}
	}()

	res := viewersResult{Viewers: *n, Refused: int(refused.Load()), BaselineSendUs: baseline.Seconds() * 1e6, BaselineReadUs: baselineRead.Seconds() * 1e6}
	var joins, setups, firstPkts, pktToKey []time.Duration
	for i, v := range viewers {
		if errs[i] != nil || v == nil {
			res.Failed++
			continue
		}
		st := v.Stats()
		res.Joined++
		res.AllJoinedSeconds = max(res.AllJoinedSeconds, st.FirstKeyframeAt.Sub(joinStart).Seconds())
		joins = append(joins, st.FirstKeyframeAt.Sub(posted[i]))
		firstPkts = append(firstPkts, st.FirstPacketAt.Sub(posted[i]))
		pktToKey = append(pktToKey, st.FirstKeyframeAt.Sub(st.FirstPacketAt))
		setups = append(setups, posted[i].Sub(st.Start))
		if st.FirstKeyframeParams {
			res.KeyframeWithSPS++
		}
	}
	if res.Joined == 0 {
		return fmt.Errorf("no viewer received a keyframe (first error: %v)", firstErr(errs))
	}
	sort.Slice(joins, func(i, j int) bool { return joins[i] < joins[j] })
	res.KeyframeP50ms = ms(percentile(joins, 50))
	res.KeyframeP95ms = ms(percentile(joins, 95))
	res.KeyframeP99ms = ms(percentile(joins, 99))
	res.KeyframeMaxms = ms(joins[len(joins)-1])
	for _, d := range [][]time.Duration{firstPkts, pktToKey} {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	}
	res.FirstPacketP50ms, res.FirstPacketP95ms = ms(percentile(firstPkts, 50)), ms(percentile(firstPkts, 95))
	res.PacketToKeyP50ms, res.PacketToKeyP95ms = ms(percentile(pktToKey, 50)), ms(percentile(pktToKey, 95))
	sort.Slice(setups, func(i, j int) bool { return setups[i] < setups[j] })
	res.ClientSetupP50ms = ms(percentile(setups, 50))
	res.ClientSetupP95ms = ms(percentile(setups, 95))
	fmt.Fprintf(out, "joined %d/%d: first keyframe p50 %.0f ms, p95 %.0f ms, max %.0f ms; measuring %v...\n",
		res.Joined, *n, res.KeyframeP50ms, res.KeyframeP95ms, res.KeyframeMaxms, *steady)

	// Steady state: what the server spends per forwarded packet.
	m1, err := scrapeMetrics(ctx, *base)
	if err != nil {
		return err
	}
	before := snapshot(viewers)
	freezes := watchFreezes(ctx, viewers, *steady, out)
	m2, err := scrapeMetrics(ctx, *base)
	if err != nil {
		return err
	}
	after := snapshot(viewers)

	res.SteadySeconds = steady.Seconds()
	res.Freezes = freezes
	var bytes, pkts, lost int
	for i := range viewers {
		bytes += after[i].Video.Bytes + after[i].Audio.Bytes - before[i].Video.Bytes - before[i].Audio.Bytes
		pkts += after[i].Video.Packets - before[i].Video.Packets
		lost += after[i].Video.Lost - before[i].Video.Lost
	}
	res.RecvKbps = float64(bytes) * 8 / 1000 / steady.Seconds() / float64(res.Joined)
	if pkts+lost > 0 {
		res.LossPct = 100 * float64(lost) / float64(pkts+lost)
	}
	res.PacketsForwarded = m2.get("liveroom_media_packets_forwarded_total") - m1.get("liveroom_media_packets_forwarded_total")
	res.ServerCPUSeconds = m2.get("process_cpu_seconds_total") - m1.get("process_cpu_seconds_total")
	if res.PacketsForwarded > 0 {
		res.CPUPerPacketUs = res.ServerCPUSeconds / res.PacketsForwarded * 1e6
		res.CPURatio = res.CPUPerPacketUs / res.BaselineSendUs
		res.CPURatioRead = res.CPUPerPacketUs / res.BaselineReadUs
	}
	res.RSSBeforeMB = m0.get("process_resident_memory_bytes") / (1 << 20)
	res.RSSAfterMB = m1.get("process_resident_memory_bytes") / (1 << 20)
	res.RSSPerViewerKB = (res.RSSAfterMB - res.RSSBeforeMB) * 1024 / float64(res.Joined)
	res.ServerNACKs = m2.get("liveroom_media_nack_packets_received_total") - m1.get("liveroom_media_nack_packets_received_total")
	res.ServerRetransmits = m2.get("liveroom_media_packets_retransmitted_total") - m1.get("liveroom_media_packets_retransmitted_total")
	res.ServerDropped = m2.get("liveroom_media_packets_dropped_total") - m1.get("liveroom_media_packets_dropped_total")

	if *asJSON {
		return printJSON(out, res)
	}
	printTable(out, [][2]string{
		{"viewers joined", fmt.Sprintf("%d of %d (%d failed; %d offers refused by a cap and retried; all in after %.1f s)", res.Joined, res.Viewers, res.Failed, res.Refused, res.AllJoinedSeconds)},
		{"WHEP POST → first keyframe p50 / p95 / p99 / max", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f ms", res.KeyframeP50ms, res.KeyframeP95ms, res.KeyframeP99ms, res.KeyframeMaxms)},
		{"of which POST → first media packet p50 / p95", fmt.Sprintf("%.0f / %.0f ms", res.FirstPacketP50ms, res.FirstPacketP95ms)},
		{"of which first packet → first keyframe p50 / p95", fmt.Sprintf("%.0f / %.0f ms", res.PacketToKeyP50ms, res.PacketToKeyP95ms)},
		{"client setup before the POST p50 / p95", fmt.Sprintf("%.0f / %.0f ms", res.ClientSetupP50ms, res.ClientSetupP95ms)},
		{"first keyframe carried SPS+PPS", fmt.Sprintf("%d of %d", res.KeyframeWithSPS, res.Joined)},
		{"received per viewer", fmt.Sprintf("%.0f kbit/s", res.RecvKbps)},
		{"video loss / freezes (>500 ms)", fmt.Sprintf("%.2f %% / %d", res.LossPct, res.Freezes)},
		{"server packets forwarded", fmt.Sprintf("%.0f in %v (%.0f/s)", res.PacketsForwarded, *steady, res.PacketsForwarded/steady.Seconds())},
		{"server CPU per forwarded packet", fmt.Sprintf("%.2f µs", res.CPUPerPacketUs)},
		{"baseline: one 1200 B loopback UDP send", fmt.Sprintf("%.2f µs (nobody reading) / %.2f µs (read)", res.BaselineSendUs, res.BaselineReadUs)},
		{"ratio (target <= 1.5x)", fmt.Sprintf("%.2fx / %.2fx", res.CPURatio, res.CPURatioRead)},
		{"server RSS before / after join", fmt.Sprintf("%.1f / %.1f MiB", res.RSSBeforeMB, res.RSSAfterMB)},
		{"server RSS per viewer (target <= 1 MB)", fmt.Sprintf("%.0f KiB", res.RSSPerViewerKB)},
		{"server NACKs / retransmits / drops", fmt.Sprintf("%.0f / %.0f / %.0f", res.ServerNACKs, res.ServerRetransmits, res.ServerDropped)},
	})
	return nil
}

func snapshot(vs []*mediatest.Viewer) []mediatest.ViewerStats {
	out := make([]mediatest.ViewerStats, len(vs))
	for i, v := range vs {
		if v != nil {
			out[i] = v.Stats()
		}
	}
	return out
}

// watchFreezes samples every viewer for d and counts video stalls: no new
// video packet for more than 500 ms. It prints a progress line every 5 s.
func watchFreezes(ctx context.Context, vs []*mediatest.Viewer, d time.Duration, out io.Writer) int {
	const stall = 500 * time.Millisecond
	frozen := make([]bool, len(vs))
	freezes := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	start, last := time.Now(), totalVideoPackets(vs)
	end := time.After(d)
	for {
		select {
		case <-ctx.Done():
			return freezes
		case <-end:
			return freezes
		case now := <-progress.C:
			n := totalVideoPackets(vs)
			fmt.Fprintf(out, "t=%3.0fs video packets/s received=%d freezes=%d\n", now.Sub(start).Seconds(), (n-last)/5, freezes)
			last = n
		case now := <-tick.C:
			for i, v := range vs {
				if v == nil {
					continue
				}
				last := v.Stats().Video.LastAt
				stalled := !last.IsZero() && now.Sub(last) > stall
				if stalled && !frozen[i] {
					freezes++
				}
				frozen[i] = stalled
			}
		}
	}
}

func totalVideoPackets(vs []*mediatest.Viewer) int {
	n := 0
	for _, v := range vs {
		if v != nil {
			n += v.Stats().Video.Packets
		}
	}
	return n
}

func clipName(f string) string {
	if f == "" {
		return "the test clip"
	}
	return f
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
