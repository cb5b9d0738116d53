package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// listeners are the SFU's sockets: one UDP port (ICE UDP mux) and a TCP
// listener on the same number (ICE-TCP mux), shared by every PeerConnection.
// The UDP sockets batch their writes (batchConn): all viewers' packets leave
// through them.
type listeners struct {
	udpMux  ice.UDPMux
	tcpMux  ice.TCPMux // nil when ICE-TCP is off
	udpAddr net.Addr
	tcpAddr net.Addr
	// addrs is the UDP mux when listening on every interface (nil with
	// webrtc.listen_ip): the usable addresses, which follow the host's.
	addrs *addrMux
}

func listen(cfg Config, log logging.LeveledLogger) (*listeners, error) {
	var ip net.IP
	if cfg.ListenIP != "" {
		ip = net.ParseIP(cfg.ListenIP)
	}
	var err error
	// With port 0 the kernel picks the TCP port; the same number may be taken
	// for UDP, so retry a few times before giving up.
	for range 8 {
		var l *listeners
		if l, err = tryListen(cfg, ip, log); err == nil {
			return l, nil
		}
		if cfg.Port != 0 {
			break
		}
	}
	return nil, err
}

func tryListen(cfg Config, ip net.IP, log logging.LeveledLogger) (*listeners, error) {
	l := &listeners{}
	port := cfg.Port
	var tcpLn *net.TCPListener
	if cfg.iceTCP() {
		var err error
		if tcpLn, err = net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port}); err != nil {
			return nil, fmt.Errorf("listen ice-tcp: %w", err)
		}
		port = tcpLn.Addr().(*net.TCPAddr).Port
		l.tcpAddr = tcpLn.Addr()
	}
	closeTCP := func() {
		if tcpLn != nil {
			_ = tcpLn.Close()
		}
	}

	if ip != nil {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			closeTCP()
			return nil, fmt.Errorf("listen ice-udp: %w", err)
		}
		var pc net.PacketConn = conn
		if b := newBatchConn(conn, log); b != nil {
			pc = b
		}
		l.udpMux = webrtc.NewICEUDPMux(log, pc)
		l.udpAddr = conn.LocalAddr()
	} else {
		if port == 0 {
			// No TCP listener chose the number: let the kernel pick a free UDP
			// port, then bind it on every usable address.
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return nil, fmt.Errorf("listen ice-udp: %w", err)
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			_ = c.Close()
		}
		// One socket per usable interface address (all on the same port) so
		// replies leave from the address the client reached; the set follows
		// the host's addresses. No address, or none bindable, is not an
		// error: the node starts and Ready says so.
		filter, err := newAddrFilter(cfg)
		if err != nil {
			closeTCP()
			return nil, err
		}
		m := newAddrMux(port, filter, addrMuxOptions{
			every: cfg.addressRefresh(), grace: cfg.addressGrace(), watch: true,
		}, slogOf(log), log)
		l.udpMux, l.addrs = m, m
		l.udpAddr = &net.UDPAddr{Port: port}
	}
	if tcpLn != nil {
		l.tcpMux = newICETCPMux(log, tcpLn) // tcp_listener.go
	}
	return l, nil
}

func (l *listeners) close() error {
	var errs []error
	if l.tcpMux != nil {
		errs = append(errs, l.tcpMux.Close())
	}
	errs = append(errs, l.udpMux.Close())
	return errors.Join(errs...)
}

// slogOf finds the slog logger behind the SFU's pion logger (address
// changes are worth an Info line, which pion's Infof would drop).
func slogOf(log logging.LeveledLogger) *slog.Logger {
	if pl, ok := log.(pionLogger); ok && pl.base != nil {
		return pl.base
	}
	return slog.New(slog.DiscardHandler)
}
