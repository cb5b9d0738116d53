package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverMetrics is a scrape of the server's /metrics, summed over labels.
type serverMetrics map[string]float64

func (m serverMetrics) get(name string) float64 { return m[name] }

// scrapeMetrics reads the Prometheus text format: each sample line is
// `name{labels} value`; samples of one name are summed under the name, and
// each labelled series is also kept as written (`name{labels}`).
func scrapeMetrics(ctx context.Context, base string) (serverMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: status %d", resp.StatusCode)
	}
	m := serverMetrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, series := line, "", ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, '}'); j >= 0 {
			series, rest = name+rest[:j+1], rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		m[name] += v
		if series != "" {
			m[series] = v // one labelled series: name{a="x",b="y"}
		}
	}
	return m, sc.Err()
}

// udpSendCost measures this machine's CPU cost of one loopback UDP send of
// size bytes: the baseline that server costs are reported against, measured
// in the same run because this VM's syscall cost drifts. It counts the
// sending thread's CPU time (user + system), not wall time. With read
// false nobody reads the receiving socket (the kernel drops what
// overflows: the cheapest send); with read true a goroutine drains it, so
// each send also pays for delivery and waking a reader, as a send to a
// real viewer does.
func udpSendCost(size, count int, read bool) (time.Duration, error) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer sink.Close()
	if read {
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := sink.ReadFromUDP(buf); err != nil {
					return // closed
				}
			}
		}()
	}
	conn, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	buf := make([]byte, size)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, err := threadCPU()
	if err != nil {
		return 0, err
	}
	for i := 0; i < count; i++ {
		if _, err := conn.Write(buf); err != nil {
			return 0, err
		}
	}
	end, err := threadCPU()
	if err != nil {
		return 0, err
	}
	return (end - start) / time.Duration(count), nil
}

func threadCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable prints two aligned columns.
func printTable(w io.Writer, rows [][2]string) {
	width := 0
	for _, r := range rows {
		if len(r[0]) > width {
			width = len(r[0])
		}
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}
