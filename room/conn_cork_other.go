//go:build !unix

package room

import (
	"errors"
	"syscall"
)

// Without write(2) on the socket, every connection has its own write pump.
const nonBlockingWrites = false

func writeNow(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("non-blocking writes are not supported here")
}

func readNow(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("raw reads are not supported here")
}
