package media

import (
	"encoding/binary"
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP generic segmentation offload (Linux 4.18+): one sendmsg carries
// several same-size datagrams to one address and the kernel (or the NIC)
// cuts them apart, so the per-datagram cost of the UDP/IP stack is paid
// once per group.

// gsoCmsgLen is the size of one UDP_SEGMENT control message.
var gsoCmsgLen = unix.CmsgSpace(2)

// gsoSupported reports whether the kernel accepts UDP_SEGMENT on c.
func gsoSupported(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// putGSOCmsg writes a UDP_SEGMENT control message for segments of size
// bytes into b (at least gsoCmsgLen long) and returns it.
func putGSOCmsg(b []byte, size int) []byte {
	b = b[:gsoCmsgLen]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return b
}

// gsoRefused reports whether err means "this socket or device cannot do
// GSO" (EIO: no checksum offload on the route's device), as opposed to an
// error of the datagram itself.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOPROTOOPT)
}
