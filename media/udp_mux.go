package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
)

// addrMux is the ICE UDP mux when media listens on every interface: one
// socket per usable interface address, all on the same port, so a reply
// leaves from the address the peer reached. Unlike pion's MultiUDPMux, the
// set follows the host's addresses: netlink notifications (Linux) and a
// periodic re-read add a socket for an address that appears and retire the
// socket of one that goes away. Link-local, tentative, filtered-out and
// unbindable addresses are skipped, each logged once; none of them stops
// the node. New sessions get candidates for the addresses usable at the
// time (GetListenAddresses re-reads first if a change was signalled).
//
// Each socket is a batchConn under its own ice.UDPMuxDefault, so the send
// path is exactly the per-address one (BenchmarkUDPSendSource measures it
// against one wildcard socket with IP_PKTINFO; docs/network.md says why
// this design was kept).
type addrMux struct {
	port    int
	filter  addrFilter
	every   time.Duration // periodic re-read
	grace   time.Duration // a vanished address keeps its socket this long
	list    func() ([]hostAddr, error)
	bind    func(netip.AddrPort) (net.PacketConn, error)
	log     *slog.Logger
	pionLog logging.LeveledLogger

	refreshMu   sync.Mutex // one refresh at a time
	listFailing bool       // under refreshMu
	dirty       atomic.Bool
	lastRead    atomic.Int64 // unix nanos of the last re-read
	kick        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	watch       *addrWatch

	mu     sync.Mutex
	socks  map[netip.Addr]*addrSock
	usable []netip.Addr // sorted; the addresses announced to new sessions
	logged map[netip.Addr]string
	closed bool
}

type addrSock struct {
	mux  *ice.UDPMuxDefault
	gone time.Time // zero while the address exists
}

var _ ice.UDPMux = (*addrMux)(nil)

var errAddrGone = errors.New("media: no socket for this address")

type addrMuxOptions struct {
	every time.Duration
	grace time.Duration
	list  func() ([]hostAddr, error) // nil = hostAddrs
	watch bool                       // netlink notifications
}

func newAddrMux(port int, filter addrFilter, opts addrMuxOptions, log *slog.Logger, pionLog logging.LeveledLogger) *addrMux {
	m := &addrMux{
		port: port, filter: filter, every: opts.every, grace: opts.grace,
		list: opts.list, log: log, pionLog: pionLog,
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		socks:  map[netip.Addr]*addrSock{},
		logged: map[netip.Addr]string{},
	}
	if m.list == nil {
		m.list = hostAddrs
	}
	m.bind = m.bindUDP
	if opts.watch {
		w, err := watchAddrs(m.changed)
		if err != nil {
			log.Warn("webrtc: interface changes are seen only by polling", "every", m.every, "err", err)
		}
		m.watch = w
	}
	m.refresh()
	go m.run()
	return m
}

// changed is called on a netlink notification.
func (m *addrMux) changed() {
	m.dirty.Store(true)
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *addrMux) run() {
	defer close(m.done)
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.kick:
			// Coalesce a burst (an interface coming up sends several).
			select {
			case <-time.After(20 * time.Millisecond):
			case <-m.stop:
				return
			}
		case <-t.C:
		}
		m.refresh()
	}
}

// refresh re-reads the host's addresses and binds or retires sockets.
func (m *addrMux) refresh() {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	m.dirty.Store(false)
	m.lastRead.Store(time.Now().UnixNano())
	addrs, err := m.list()
	if err != nil {
		// Keep the sockets as they are; say so once per failing spell.
		if !m.listFailing {
			m.log.Warn("webrtc: cannot read interface addresses, keeping the current ones", "err", err)
		}
		m.listFailing = true
		return
	}
	m.listFailing = false
	want := map[netip.Addr]string{}
	m.forgetNotes(addrs)
	for _, a := range addrs {
		if why := m.filter.skip(a); why != "" {
			m.note(a.Addr, why, "webrtc: address not used for media", "addr", a.Addr, "iface", a.Iface, "reason", why)
			continue
		}
		want[a.Addr] = a.Iface
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	var add []netip.Addr
	for a := range want {
		s := m.socks[a]
		switch {
		case s == nil:
			add = append(add, a)
		case !s.gone.IsZero():
			s.gone = time.Time{}
			m.log.Info("webrtc: address back", "addr", a, "iface", want[a])
		}
	}
	m.mu.Unlock()

	// Bind outside m.mu: sessions keep reading the set meanwhile.
	bound := map[netip.Addr]*ice.UDPMuxDefault{}
	for _, a := range add {
		pc, err := m.bind(netip.AddrPortFrom(a, uint16(m.port)))
		if err != nil {
			m.note(a, "bind: "+err.Error(), "webrtc: cannot bind address, skipped", "addr", a, "iface", want[a], "port", m.port, "err", err)
			continue
		}
		bound[a] = ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: m.pionLog, UDPConn: pc})
		m.log.Info("webrtc: address added", "addr", a, "iface", want[a], "port", m.port)
	}

	now := time.Now()
	var retire []*ice.UDPMuxDefault
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		for _, mx := range bound {
			_ = mx.Close()
		}
		return
	}
	for a, mx := range bound {
		m.socks[a] = &addrSock{mux: mx}
		delete(m.logged, a)
	}
	for a, s := range m.socks {
		if _, ok := want[a]; ok {
			continue
		}
		if s.gone.IsZero() {
			s.gone = now
			m.log.Info("webrtc: address gone", "addr", a)
		}
		if now.Sub(s.gone) >= m.grace {
			delete(m.socks, a)
			retire = append(retire, s.mux)
		}
	}
	usable := make([]netip.Addr, 0, len(m.socks))
	for a, s := range m.socks {
		if s.gone.IsZero() {
			usable = append(usable, a)
		}
	}
	slices.SortFunc(usable, func(x, y netip.Addr) int { return x.Compare(y) })
	m.usable = usable
	m.mu.Unlock()
	for _, mx := range retire {
		_ = mx.Close()
	}
}

// forgetNotes drops the once-only log marks of addresses the host no
// longer has (container hosts churn through many).
func (m *addrMux) forgetNotes(addrs []hostAddr) {
	present := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		present[a.Addr] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for a := range m.logged {
		if !present[a] {
			delete(m.logged, a)
		}
	}
}

// note logs a skipped address once per reason.
func (m *addrMux) note(a netip.Addr, why, msg string, args ...any) {
	m.mu.Lock()
	seen := m.logged[a] == why
	m.logged[a] = why
	m.mu.Unlock()
	if seen {
		return
	}
	level := slog.LevelInfo
	switch {
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		level = slog.LevelDebug
	case len(why) > 5 && why[:5] == "bind:":
		level = slog.LevelWarn
	}
	m.log.Log(context.Background(), level, msg, args...)
}

func (m *addrMux) bindUDP(ap netip.AddrPort) (net.PacketConn, error) {
	network := "udp4"
	if ap.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	if b := newBatchConn(c, m.pionLog); b != nil {
		return b, nil
	}
	return c, nil
}

// fresh re-reads the addresses first if a change was signalled or the
// last read is older than the refresh period.
func (m *addrMux) fresh() {
	if m.dirty.Load() || time.Since(time.Unix(0, m.lastRead.Load())) > m.every {
		m.refresh()
	}
}

// Usable returns the addresses media is served on now.
func (m *addrMux) Usable() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.usable)
}

// usableIP reports whether ip is one of the usable addresses (pion's
// IPFilter, for ICE-TCP candidates).
func (m *addrMux) usableIP(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	m.mu.Lock()
	defer m.mu.Unlock()
	_, found := slices.BinarySearchFunc(m.usable, a, func(x, y netip.Addr) int { return x.Compare(y) })
	return found
}

// GetListenAddresses: one per usable address, for a new session's host
// candidates.
func (m *addrMux) GetListenAddresses() []net.Addr {
	m.fresh()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]net.Addr, 0, len(m.usable))
	for _, a := range m.usable {
		out = append(out, &net.UDPAddr{IP: a.AsSlice(), Port: m.port})
	}
	return out
}

func (m *addrMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("media: not a UDP address: %v", addr)
	}
	a, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		return nil, errAddrGone
	}
	m.mu.Lock()
	s := m.socks[a.Unmap()]
	m.mu.Unlock()
	if s == nil {
		return nil, errAddrGone
	}
	return s.mux.GetConn(ufrag, addr)
}

func (m *addrMux) RemoveConnByUfrag(ufrag string) {
	m.mu.Lock()
	muxes := make([]*ice.UDPMuxDefault, 0, len(m.socks))
	for _, s := range m.socks {
		muxes = append(muxes, s.mux)
	}
	m.mu.Unlock()
	for _, mx := range muxes {
		mx.RemoveConnByUfrag(ufrag)
	}
}

func (m *addrMux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	socks := m.socks
	m.socks, m.usable = map[netip.Addr]*addrSock{}, nil
	m.mu.Unlock()
	close(m.stop)
	m.watch.close()
	<-m.done
	var errs []error
	for _, s := range socks {
		errs = append(errs, s.mux.Close())
	}
	return errors.Join(errs...)
}
