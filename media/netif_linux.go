package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hostAddrs lists this host's interface addresses with their flags: unlike
// net.InterfaceAddrs it tells tentative IPv6 addresses apart (one netlink
// RTM_GETADDR dump).
func hostAddrs() ([]hostAddr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("interfaces: %w", err)
	}
	byIndex := make(map[int]net.Interface, len(ifaces))
	for _, ifc := range ifaces {
		byIndex[ifc.Index] = ifc
	}
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("netlink addresses: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("netlink addresses: %w", err)
	}
	var out []hostAddr
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		ifam := (*syscall.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		flags := uint32(ifam.Flags)
		var local, address netip.Addr
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_LOCAL:
				local, _ = netip.AddrFromSlice(a.Value)
			case unix.IFA_ADDRESS:
				address, _ = netip.AddrFromSlice(a.Value)
			case unix.IFA_FLAGS:
				if len(a.Value) >= 4 {
					flags = binary.NativeEndian.Uint32(a.Value)
				}
			}
		}
		// IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
		// peer's on a point-to-point link); IPv6 sends only IFA_ADDRESS.
		ip := local
		if !ip.IsValid() {
			ip = address
		}
		if !ip.IsValid() {
			continue
		}
		ifc := byIndex[int(ifam.Index)]
		out = append(out, hostAddr{
			Addr:      ip.Unmap(),
			Iface:     ifc.Name,
			Up:        ifc.Flags&net.FlagUp != 0,
			Loopback:  ifc.Flags&net.FlagLoopback != 0,
			Tentative: flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0,
		})
	}
	return out, nil
}

// addrWatch delivers the kernel's address and link notifications (netlink
// RTMGRP_*): each one, and an overflow of the socket, calls changed.
type addrWatch struct{ f *os.File }

func watchAddrs(changed func()) (*addrWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
		Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// A non-blocking descriptor goes to the runtime poller: Close wakes
	// the reader.
	w := &addrWatch{f: os.NewFile(uintptr(fd), "netlink-route")}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			_, err := w.f.Read(buf)
			if err != nil && !isNoBufs(err) {
				return // closed
			}
			changed() // ENOBUFS: notifications were lost, so re-read all
		}
	}()
	return w, nil
}

func isNoBufs(err error) bool { return errors.Is(err, syscall.ENOBUFS) }

func (w *addrWatch) close() {
	if w != nil {
		_ = w.f.Close()
	}
}
