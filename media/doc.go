// Package media is liveroom's SFU: one source per room (a WHIP publisher,
// an RTSP publisher or pulled RTSP source, or an edge's pull from the
// origin node) fans its RTP out to any number of WebRTC viewers (WHEP), all
// on one UDP port (ICE UDP mux) plus ICE-TCP on the same number. Readers
// that are not WebRTC viewers (RTSP read today; the recorder and HLS muxer
// later) get the room's stream as access units on the room clock through
// OpenReader: the published media seam, specified in docs/architecture.md.
//
// The package exposes a Go API only; package web maps it onto HTTP.
//
// The shape of the hot path, per room and per kind (video, audio):
//
//	source (WebRTC publisher, ...) --*rtp.Packet--> forwarder
//	    forwarder: keyframe gate, SSRC/sequence/timestamp rewrite, room
//	               clock PTS, one copy into a pooled ref-counted packet,
//	               NACK history
//	    forwarder --same *packet--> viewer queue (bounded) --> writer goroutine --> downTrack
//	    writer: woken once per frame (sendQueue), SRTP, then batchConn: the
//	            shared UDP socket's flusher sends with sendmmsg, a frame to
//	            one viewer as one GSO group; sender reports from the room clock
//	    forwarder --same *packet--> tap queue (bounded, drops) --> stream
//	            (one per room while it has readers): access units, GOP
//	            cache --> each Reader's bounded queue --> RTSP read, ...
//
// Error mapping expected from the HTTP layer: ErrBadOffer and ErrBadFragment
// are 400; ErrNoCodec is 400 too (or 422: it means "well-formed, but nothing
// we can send or receive"); ErrICERestartUnsupported is 422 and leaves the
// session as it was; ErrPublisherConflict is 409; ErrSessionNotFound and
// ErrRoomNotFound are 404; ErrClosed is 503. Context errors (the caller's
// deadline hit while gathering candidates) are 503 or 504.
package media
