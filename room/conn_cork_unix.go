//go:build unix

package room

import (
	"errors"
	"syscall"
	"unsafe"
)

const nonBlockingWrites = true

// writeNow makes one non-blocking write(2) on the socket: it returns what
// the kernel took, 0 when the send buffer is full.
//
// It is a raw syscall, without telling the scheduler: a non-blocking write
// returns in microseconds, and the writers make tens of thousands a second.
// With syscall.Write every one enters and leaves a "syscall" state, and the
// runtime's monitor, seeing a P in a syscall while the other is busy, hands
// it off to another thread: a profile of 1,000 busy viewers had ~10 % of
// the server's CPU in those thread switches and the monitor's polling.
func writeNow(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			n, werr = int(r), nil
			if e != 0 {
				n, werr = 0, e
			}
			if !errors.Is(werr, syscall.EINTR) {
				return true // done either way: never wait for the socket
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if errors.Is(werr, syscall.EAGAIN) {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}
