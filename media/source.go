package media

import "github.com/pion/rtp"

// source is one kind of publisher feeding a room: the WebRTC (WHIP)
// publisher today, an RTSP ingest or an edge pull later. A source gets one
// ingest per kind from room.attach and writes its packets into it from one
// goroutine per ingest.
type source interface {
	// hostID identifies who publishes: the same host reconnecting replaces
	// its previous source; another host is a conflict.
	hostID() string
	// requestKeyframe asks for a video keyframe. It must not block: the
	// forwarder calls it on the packet path (already throttled).
	requestKeyframe()
	// stop ends the source after it was replaced by the same host.
	stop()
}

// ingest is the handle through which one source track writes into a room's
// forwarder. Once the source is replaced or detached its writes are dropped,
// so a publisher that is still draining cannot interleave with its successor.
type ingest struct {
	f     *forwarder
	src   source
	codec int        // index into codecTable
	rep   *srcReport // the source's first clock report; guarded by f.mu
}

// writeRTP forwards p. p and its payload are only read during the call, so
// the caller may reuse them.
func (in *ingest) writeRTP(p *rtp.Packet) { in.f.write(in, p) }
