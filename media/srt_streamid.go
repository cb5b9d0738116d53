package media

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadStreamID is wrapped by every refusal of an SRT stream id.
var ErrBadStreamID = errors.New("bad SRT stream id")

// srtMaxStreamID is SRT's own limit on the stream id (SRTO_STREAMID).
const srtMaxStreamID = 512

// srtStreamID is what an SRT caller asks for: a room, a mode and the key
// that proves it may.
type srtStreamID struct {
	roomID  string
	key     string
	publish bool // false: a reader (not served yet)
}

// parseSRTStreamID accepts the short form `publish:{room}:{key}` (the key
// may contain ':') and the SRT access-control form
// `#!::r={room},m=publish,s={key}` (keys in any order; u, h and t are
// ignored). `read:{room}:{key}` and m=request parse, so the caller can say
// why it refuses them.
func parseSRTStreamID(s string) (srtStreamID, error) {
	if len(s) > srtMaxStreamID {
		return srtStreamID{}, fmt.Errorf("%w: longer than %d bytes", ErrBadStreamID, srtMaxStreamID)
	}
	var id srtStreamID
	var err error
	if rest, ok := strings.CutPrefix(s, "#!::"); ok {
		id, err = parseSRTAccessControl(rest)
	} else {
		id, err = parseSRTShortID(s)
	}
	if err != nil {
		return srtStreamID{}, err
	}
	if _, ok := rtspRoomID(id.roomID); !ok || id.roomID != strings.Trim(id.roomID, "/") {
		return srtStreamID{}, fmt.Errorf("%w: %q is not a room id", ErrBadStreamID, id.roomID)
	}
	if id.key == "" {
		return srtStreamID{}, fmt.Errorf("%w: no stream key", ErrBadStreamID)
	}
	return id, nil
}

func parseSRTShortID(s string) (srtStreamID, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return srtStreamID{}, fmt.Errorf("%w: want publish:{room}:{key} or #!::r={room},m=publish,s={key}", ErrBadStreamID)
	}
	var id srtStreamID
	switch parts[0] {
	case "publish":
		id.publish = true
	case "read":
	default:
		return srtStreamID{}, fmt.Errorf("%w: mode %q is neither publish nor read", ErrBadStreamID, parts[0])
	}
	id.roomID, id.key = parts[1], parts[2]
	return id, nil
}

func parseSRTAccessControl(s string) (srtStreamID, error) {
	var id srtStreamID
	mode := ""
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return srtStreamID{}, fmt.Errorf("%w: %q is not key=value", ErrBadStreamID, kv)
		}
		if seen[k] {
			return srtStreamID{}, fmt.Errorf("%w: %q given twice", ErrBadStreamID, k)
		}
		seen[k] = true
		switch k {
		case "r":
			id.roomID = v
		case "s":
			id.key = v
		case "m":
			mode = v
		}
	}
	switch mode {
	case "publish":
		id.publish = true
	case "request", "":
		// SRT's default mode is request: a caller that only reads.
	default:
		return srtStreamID{}, fmt.Errorf("%w: m=%q is neither publish nor request", ErrBadStreamID, mode)
	}
	return id, nil
}
