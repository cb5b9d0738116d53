package media

import "errors"

// Sentinel errors. Returned errors wrap them with detail; test with errors.Is.
var (
	// ErrBadOffer: the SDP offer is malformed or cannot be applied.
	ErrBadOffer = errors.New("bad sdp offer")
	// ErrNoCodec: the offer is well-formed but carries no codec the SFU can use
	// (H264 packetization-mode 1, VP8, Opus, G.711) in a usable direction.
	ErrNoCodec = errors.New("no usable codec in offer")
	// ErrPublisherConflict: another host is publishing in the room.
	ErrPublisherConflict = errors.New("room already has a publisher")
	// ErrSessionNotFound: no such session in the room.
	ErrSessionNotFound = errors.New("session not found")
	// ErrRoomNotFound: the room has no media state (no session ever joined, or it
	// was closed). Errors for an unknown room wrap both this and ErrSessionNotFound.
	ErrRoomNotFound = errors.New("room not found")
	// ErrBadFragment: a PATCH body (RFC 8840 sdpfrag) is malformed.
	ErrBadFragment = errors.New("bad sdp fragment")
	// ErrICERestartUnsupported: the fragment asks for an ICE restart the session
	// cannot perform (e.g. credentials missing); the session is unchanged.
	ErrICERestartUnsupported = errors.New("ice restart not supported")
	// ErrClosed: the SFU is shutting down.
	ErrClosed = errors.New("sfu closed")
)
