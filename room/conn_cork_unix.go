//go:build unix

package room

import (
	"errors"
	"io"
	"syscall"
	"unsafe"
)

const nonBlockingWrites = true

// writeNow makes one non-blocking send on the socket: it returns what the
// kernel took, 0 when the send buffer is full.
//
// It is a raw syscall, without telling the scheduler: a non-blocking send
// returns in microseconds, and the writers make tens of thousands a second.
// With syscall.Write every one enters and leaves a "syscall" state, and the
// runtime's monitor, seeing a P in a syscall while the other is busy, hands
// it off to another thread: a profile of 1,000 busy viewers had ~10 % of
// the server's CPU in those thread switches and the monitor's polling.
// It is sendto(2) rather than write(2): the same TCP send without the VFS
// layer's file-position lock and hooks (~5 % of a delivery's CPU).
func writeNow(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
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

// readNow reads what the socket has with a raw read(2), and waits on the
// poller (and the read deadline) when it has nothing. Raw for the same
// reason as writeNow, and one more: a syscall entered the runtime's way
// wakes the runtime's monitor from its deep sleep and resets its polling
// to every 20 µs. A hub that goes idle between chat messages (every 20 ms
// at 50 messages/s) had its monitor woken by the first read after each
// idle spell: ~1,500 sleeps a second, 7–8 % of the server's CPU.
func readNow(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			n, rerr = int(r), nil
			if e != 0 {
				n, rerr = 0, e
			}
			if errors.Is(rerr, syscall.EINTR) {
				continue
			}
			return !errors.Is(rerr, syscall.EAGAIN)
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
