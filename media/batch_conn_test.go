package media

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func listenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newTestBatchConn(t testing.TB) *batchConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b := newBatchConn(c, nil)
	if b == nil {
		t.Fatal("newBatchConn: not wrapped")
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestBatchConnConcurrentWriters: every datagram of every writer arrives
// whole, and each writer's datagrams arrive in the order it wrote them.
func TestBatchConnConcurrentWriters(t *testing.T) {
	const writers, each = 8, 300
	b := newTestBatchConn(t)
	sink := listenLoopback(t)
	_ = sink.SetReadBuffer(8 << 20)
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			buf := make([]byte, 1200)
			for i := range each {
				copy(buf, fmt.Sprintf("%02d %05d", w, i))
				if _, err := b.WriteToAddrPort(buf, to); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if i%50 == 0 {
					time.Sleep(time.Millisecond) // let the kernel buffer drain
				}
			}
		})
	}
	next := make([]int, writers)
	buf := make([]byte, 2048)
	_ = sink.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got := 0; got < writers*each; got++ {
		n, from, err := sink.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", got, err)
		}
		if n != 1200 {
			t.Fatalf("datagram of %d bytes, want 1200", n)
		}
		if from != b.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("from %v, want the batch conn's address %v", from, b.LocalAddr())
		}
		var w, i int
		if _, err := fmt.Sscanf(string(buf[:8]), "%02d %05d", &w, &i); err != nil {
			t.Fatalf("bad datagram %q: %v", buf[:8], err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: got datagram %d, want %d (reordered or lost)", w, i, next[w])
		}
		next[w]++
	}
	wg.Wait()
	if e := b.err(); e != nil {
		t.Errorf("send error: %v", e)
	}
}

// TestBatchConnFlushOnClose: what was queued before Close is sent; writes
// after Close fail.
func TestBatchConnFlushOnClose(t *testing.T) {
	sink := listenLoopback(t)
	_ = sink.SetReadBuffer(4 << 20)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// A writer that holds the first batch until released, so that the rest
	// is still queued when Close is called.
	gate := make(chan struct{})
	w := &gatedWriter{w: ipv4.NewPacketConn(c), gate: gate}
	b := newBatchConnWriter(c, w, nil)
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	const total = 100
	for i := range total {
		if _, err := b.WriteToAddrPort([]byte{byte(i)}, to); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	time.Sleep(20 * time.Millisecond)
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := b.WriteToAddrPort([]byte{1}, to); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: got %v, want net.ErrClosed", err)
	}
	buf := make([]byte, 16)
	_ = sink.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range total {
		n, _, err := sink.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if n != 1 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: got %v", i, buf[:n])
		}
	}
}

type gatedWriter struct {
	w       batchWriter
	gate    chan struct{}
	entered chan struct{} // optional: closed when the first call arrives
	once    sync.Once
}

func (g *gatedWriter) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	g.once.Do(func() {
		if g.entered != nil {
			close(g.entered)
		}
		<-g.gate
	})
	return g.w.WriteBatch(ms, flags)
}

// failingWriter refuses a message holding a datagram whose first byte is
// bad, and with noGSO any message of several datagrams (a GSO group).
type failingWriter struct {
	mu     sync.Mutex
	got    [][]byte
	groups int
	bad    byte
	noGSO  error
	fail   error
}

func (f *failingWriter) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range ms {
		if len(m.Buffers) > 1 {
			if f.noGSO != nil {
				return i, f.noGSO
			}
			f.groups++
		}
		for _, buf := range m.Buffers {
			if buf[0] == f.bad {
				return i, f.fail
			}
		}
		for _, buf := range m.Buffers {
			f.got = append(f.got, bytes.Clone(buf))
		}
	}
	return len(ms), nil
}

func (f *failingWriter) sent() []byte {
	var out []byte
	for _, d := range f.got {
		out = append(out, d[0])
	}
	return out
}

// TestBatchConnErrors: a refused datagram is skipped, counted and kept as
// the last error; the rest of its batch is still sent.
func TestBatchConnErrors(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	fw := &failingWriter{bad: 3, fail: syscall.ENETUNREACH}
	b := newBatchConnWriter(c, fw, nil)
	b.gso.Store(false)
	to := netip.MustParseAddrPort("127.0.0.1:9")
	for i := range 6 {
		if _, err := b.WriteToAddrPort([]byte{byte(i)}, to); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := fw.sent(), []byte{0, 1, 2, 4, 5}; !bytes.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if n := b.errs.Load(); n != 1 {
		t.Errorf("errors counted: got %d, want 1", n)
	}
	if !errors.Is(b.err(), syscall.ENETUNREACH) {
		t.Errorf("last error: got %v, want ENETUNREACH", b.err())
	}
	if _, err := b.WriteToAddrPort(make([]byte, 4000), to); !errors.Is(err, errDatagramTooLarge) {
		t.Errorf("oversize write: got %v, want errDatagramTooLarge", err)
	}
}

// TestBatchGroups: runs to one address of equal size (the last may be
// shorter) become one GSO message; anything else breaks the run.
func TestBatchGroups(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1000")
	z := netip.MustParseAddrPort("127.0.0.1:2000")
	type dg struct {
		to   netip.AddrPort
		size int
	}
	cases := []struct {
		name string
		in   []dg
		want []int // datagrams per message
	}{
		{"one frame to one viewer", []dg{{a, 1200}, {a, 1200}, {a, 1200}, {a, 700}}, []int{4}},
		{"frames to two viewers", []dg{{a, 1200}, {a, 800}, {z, 1200}, {z, 1200}}, []int{2, 2}},
		{"shorter datagram ends the group", []dg{{a, 1200}, {a, 700}, {a, 1200}}, []int{2, 1}},
		{"a bigger one starts a new group", []dg{{a, 700}, {a, 1200}, {a, 1200}}, []int{1, 2}},
		{"interleaved viewers", []dg{{a, 1200}, {z, 1200}, {a, 1200}}, []int{1, 1, 1}},
		{"segment cap", func() []dg {
			var ds []dg
			for range maxSegments + 3 {
				ds = append(ds, dg{a, 1000})
			}
			return ds
		}(), []int{maxSegments, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ds []*datagram
			for _, d := range c.in {
				x := &datagram{}
				x.bufs[0] = x.buf[:d.size]
				ip := d.to.Addr().As4()
				copy(x.ip[:], ip[:])
				x.addr.IP, x.addr.Port = x.ip[:4], int(d.to.Port())
				ds = append(ds, x)
			}
			o := newBatchOut()
			o.build(ds, true)
			if !slices.Equal(o.segs, c.want) {
				t.Fatalf("groups: got %v, want %v", o.segs, c.want)
			}
			for i, m := range o.msgs {
				if (len(m.OOB) > 0) != (c.want[i] > 1) {
					t.Errorf("message %d: control message %v with %d datagrams", i, m.OOB, c.want[i])
				}
			}
			o.build(ds, false)
			if len(o.msgs) != len(ds) {
				t.Errorf("without GSO: got %d messages, want %d", len(o.msgs), len(ds))
			}
		})
	}
}

// TestBatchConnGSOFallback: a device that refuses GSO turns it off for
// good, and the refused group still goes out, datagram by datagram.
func TestBatchConnGSOFallback(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	fw := &failingWriter{bad: 0xff, noGSO: syscall.EIO}
	// The first datagram's send blocks until the rest is queued, so that
	// they form one batch and one group.
	gate, entered := make(chan struct{}), make(chan struct{})
	gw := &gatedWriter{w: fw, gate: gate, entered: entered}
	b := newBatchConnWriter(c, gw, nil)
	b.gso.Store(true)
	to := netip.MustParseAddrPort("127.0.0.1:9")
	for i := range 5 {
		if _, err := b.WriteToAddrPort([]byte{byte(i), 0}, to); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-entered
		}
	}
	close(gate)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := fw.sent(), []byte{0, 1, 2, 3, 4}; !bytes.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if b.gso.Load() {
		t.Error("GSO still on after the device refused it")
	}
	if n := b.errs.Load(); n != 0 {
		t.Errorf("errors counted: got %d, want 0", n)
	}
}

// BenchmarkUDPSend compares one sendto per datagram with the batching
// conn, from several writers to a reading sink (the ratio is what matters:
// absolute costs drift on a shared VM).
func BenchmarkUDPSend(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
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
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			var w interface {
				WriteToAddrPort([]byte, netip.AddrPort) (int, error)
			} = &udpAddrPortWriter{c}
			if batched {
				bc := newBatchConn(c, nil)
				defer bc.Close()
				w = bc
			} else {
				defer c.Close()
			}
			to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
			buf := make([]byte, 1200)
			b.SetParallelism(8)
			b.SetBytes(int64(len(buf)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = w.WriteToAddrPort(buf, to)
				}
			})
		})
	}
}

type udpAddrPortWriter struct{ c *net.UDPConn }

func (u *udpAddrPortWriter) WriteToAddrPort(p []byte, to netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(p, to)
}
