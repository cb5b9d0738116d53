package media

import (
	"errors"
	"fmt"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/transport/v5/stdnet"
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
			// port, then bind it on every interface.
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return nil, fmt.Errorf("listen ice-udp: %w", err)
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			_ = c.Close()
		}
		// One socket per interface address (all on the same port) so replies
		// leave from the address the client reached.
		std, err := stdnet.NewNet()
		if err != nil {
			closeTCP()
			return nil, fmt.Errorf("listen ice-udp: %w", err)
		}
		m, err := ice.NewMultiUDPMuxFromPort(port, ice.UDPMuxFromPortWithLogger(log),
			ice.UDPMuxFromPortWithNet(batchNet{Net: std, log: log}))
		if err != nil {
			closeTCP()
			return nil, fmt.Errorf("listen ice-udp on port %d: %w", port, err)
		}
		l.udpMux = m
		l.udpAddr = &net.UDPAddr{Port: port}
	}
	if tcpLn != nil {
		l.tcpMux = webrtc.NewICETCPMux(log, tcpLn, 8)
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
