//go:build linux

package media

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The two designs the network-change issue allowed, measured on the send
// path (the SFU's hot path) before one was chosen:
//
//   - bound: a socket per interface address (what transport.go does, and
//     what it did before, on fewer addresses), batched by batchConn;
//   - wildcard+pktinfo: one dual-stack socket on [::], batched the same way,
//     every message carrying an IP_PKTINFO control message so that it leaves
//     from the address the peer used.
//
// Run: go test -run '^$' -bench 'UDPSendSource' -count 3 ./media/
// Ratios matter, not absolutes (a shared VM; see docs/benchmarks.md).
func BenchmarkUDPSendSource(b *testing.B) {
	for _, mode := range []string{"bound", "wildcard+pktinfo"} {
		b.Run(mode, func(b *testing.B) {
			sink := listenLoopback(b)
			_ = sink.SetReadBuffer(8 << 20)
			go func() {
				buf := make([]byte, 2048)
				for {
					if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
						return
					}
				}
			}()
			var bc *batchConn
			if mode == "bound" {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				bc = newBatchConn(c, nil)
			} else {
				c, err := net.ListenUDP("udp", &net.UDPAddr{})
				if err != nil {
					b.Fatal(err)
				}
				w := &pktinfoWriter{w: ipv4.NewPacketConn(c), src: netip.MustParseAddr("127.0.0.1")}
				bc = newBatchConnWriter(c, w, nil)
			}
			defer bc.Close()
			to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
			buf := make([]byte, 1200)
			b.SetParallelism(8)
			b.SetBytes(int64(len(buf)))
			// Wall time per send inflates when other processes share the
			// cores; the process's CPU time per send (writers, flusher and
			// the sink's reader, the same for both) is steadier.
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = bc.WriteToAddrPort(buf, to)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			if err := bc.err(); err != nil {
				b.Fatalf("send error: %v", err)
			}
		})
	}
}

// pktinfoWriter adds an IP_PKTINFO source address to every message, after
// whatever control message (UDP_SEGMENT) the message already has.
type pktinfoWriter struct {
	w   batchWriter
	src netip.Addr
	oob [maxBatch][]byte
}

func (p *pktinfoWriter) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	for i := range ms {
		b := append(p.oob[i][:0], ms[i].OOB...)
		n := len(b)
		b = append(b, make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))...)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[n]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[n+unix.CmsgLen(0)]))
		pi.Spec_dst = p.src.As4()
		p.oob[i], ms[i].OOB = b, b
	}
	return p.w.WriteBatch(ms, flags)
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
