//go:build !linux

package media

import "net"

const gsoCmsgLen = 0

func gsoSupported(*net.UDPConn) bool    { return false }
func putGSOCmsg(b []byte, _ int) []byte { return b[:0] }
func gsoRefused(error) bool             { return false }
