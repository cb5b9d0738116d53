//go:build unix

package room

import (
	"errors"
	"syscall"
)

const nonBlockingWrites = true

// writeNow makes one non-blocking write(2) on the socket: it returns what
// the kernel took, 0 when the send buffer is full.
func writeNow(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
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
