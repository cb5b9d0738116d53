package media

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// ErrCodecUnsupported: the viewer's offer is valid but cannot receive the
// codec the room sends now (Firefox without OpenH264 offers VP8/VP9/AV1 for
// an H264 room). Answering it would connect a player that shows nothing; the
// caller is told what the room sends so that it can fall back (HLS).
var ErrCodecUnsupported = errors.New("codec_unsupported")

// CodecError is ErrCodecUnsupported with what the room sends.
type CodecError struct {
	RoomSends []string // e.g. ["H264", "Opus"]
	Offered   []string // the video (or audio) codecs the offer named
}

func (e *CodecError) Error() string {
	return fmt.Sprintf("the room sends %s; this browser offered to receive %s: it cannot play this room over WebRTC",
		strings.Join(e.RoomSends, " + "), strings.Join(e.Offered, ", "))
}

func (e *CodecError) Unwrap() error { return ErrCodecUnsupported }

// checkRoomCodecs refuses a viewer's offer that cannot decode the room's
// current video (or, for a room without video, its audio). A room that is
// not live yet passes: what it will send is not known.
func (s *SFU) checkRoomCodecs(roomID, offer string) error {
	cur, ok := s.roomCodecs(roomID)
	if !ok {
		return nil
	}
	k := kindVideo
	if cur[kindVideo] < 0 {
		k = kindAudio
	}
	if cur[k] < 0 || cur[k] >= len(s.codecs) {
		return nil
	}
	want := s.codecs[cur[k]].fam
	can, offered := offerReceives(offer, s.codecs, k, want)
	if can {
		return nil
	}
	return &CodecError{Offered: offered, RoomSends: s.codecNames(cur)}
}

// offerReceives reports whether a receiving section of kind k in offer has
// a codec of family want, and names the codecs the sections offered. The
// offer already passed checkOffer.
func offerReceives(offer string, codecs codecTable, k kind, want family) (bool, []string) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return true, nil // checkOffer's business
	}
	media := "audio"
	if k == kindVideo {
		media = "video"
	}
	var offered []string
	for _, md := range d.MediaDescriptions {
		if md == nil || md.MediaName.Media != media || md.MediaName.Port.Value == 0 || !directionOK(md, false) {
			continue
		}
		for _, f := range md.MediaName.Formats {
			name, fmtp := formatOf(md, f)
			if name == "" {
				continue
			}
			if i := codecs.match(media+"/"+name, fmtp); i >= 0 && codecs[i].fam == want {
				return true, nil
			}
			if len(offered) < 8 && !contains(offered, name) && !isAuxCodec(name) {
				offered = append(offered, name)
			}
		}
	}
	return false, offered
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// isAuxCodec: formats that carry no media of their own.
func isAuxCodec(name string) bool {
	switch strings.ToLower(name) {
	case "rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn":
		return true
	}
	return false
}
