package room

import (
	"encoding/binary"

	"github.com/gorilla/websocket"
)

// wsFrame is one whole server-to-client WebSocket frame, header and
// payload (RFC 6455 §5.2: a server's frames are not masked), encoded once
// and shared by every connection that sends it. The writers append frames
// to a connection's cork buffer themselves instead of through gorilla's
// per-message write (its lock, deadline and prepared-frame lookup cost
// more than the copy). This holds because the hub never negotiates
// permessage-deflate: the bytes of a frame do not depend on the connection.
type wsFrame []byte

// frameHeadroom is the longest header: 2 bytes, then a 64-bit length.
const frameHeadroom = 10

// eventFrame encodes ev as a final text frame with its header written in
// front of the JSON, without copying it.
func eventFrame(ev Event) (f wsFrame, payload int) {
	b := ev.AppendJSON(make([]byte, frameHeadroom, frameHeadroom+256))
	return headFrame(b, 0x80|0x1)
}

// headFrame writes the header of a frame with first byte b0 in front of
// b[frameHeadroom:], the payload.
func headFrame(b []byte, b0 byte) (wsFrame, int) {
	n := len(b) - frameHeadroom
	var h int
	switch {
	case n < 126:
		h = 2
		b[frameHeadroom-1] = byte(n)
	case n <= 0xffff:
		h = 4
		b[frameHeadroom-3] = 126
		binary.BigEndian.PutUint16(b[frameHeadroom-2:], uint16(n))
	default:
		h = 10
		b[frameHeadroom-9] = 127
		binary.BigEndian.PutUint64(b[frameHeadroom-8:], uint64(n))
	}
	b[frameHeadroom-h] = b0
	return wsFrame(b[frameHeadroom-h:]), n
}

// controlFrame encodes a control frame (ping, pong, close) of opcode op.
func controlFrame(op byte, payload []byte) wsFrame {
	b := append(make([]byte, frameHeadroom, frameHeadroom+len(payload)), payload...)
	f, _ := headFrame(b, 0x80|op)
	return f
}

const (
	opClose = 0x8
	opPing  = 0x9
)

// pingFrame is the empty ping the writers send to idle connections.
var pingFrame = controlFrame(opPing, nil)

// errCloseSent refuses frames after the connection's close frame: nothing
// may follow it (RFC 6455 §5.5.1). It is gorilla's error for the same, so
// that callers of gorilla's writes (the pong) see what they expect.
var errCloseSent = websocket.ErrCloseSent
