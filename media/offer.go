package media

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// maxOfferBytes bounds what we parse from an untrusted client; real offers
// are a few kilobytes.
const maxOfferBytes = 64 << 10

// checkOffer vets an untrusted offer before any PeerConnection exists, so a
// bad one costs nothing and leaks nothing. publish says which direction the
// client must send in: a publisher's media sections must send to us, a
// viewer's must receive. It reports which kinds are usable, or ErrBadOffer
// or ErrNoCodec, wrapped.
func checkOffer(offer string, codecs codecTable, publish bool) (usable [numKinds]bool, err error) {
	if strings.TrimSpace(offer) == "" {
		return usable, fmt.Errorf("%w: empty", ErrBadOffer)
	}
	if len(offer) > maxOfferBytes {
		return usable, fmt.Errorf("%w: %d bytes, limit %d", ErrBadOffer, len(offer), maxOfferBytes)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return usable, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if len(d.MediaDescriptions) == 0 {
		return usable, fmt.Errorf("%w: no media sections", ErrBadOffer)
	}
	var seen []string
	for _, md := range d.MediaDescriptions {
		if md == nil {
			continue
		}
		k := md.MediaName.Media
		if k != "audio" && k != "video" {
			continue
		}
		if md.MediaName.Port.Value == 0 || !directionOK(md, publish) {
			continue
		}
		for _, f := range md.MediaName.Formats {
			name, fmtp := formatOf(md, f)
			if name == "" {
				continue
			}
			i := codecs.match(k+"/"+name, fmtp)
			if i >= 0 && codecs[i].kind.String() == k {
				if k == "video" {
					usable[kindVideo] = true
				} else {
					usable[kindAudio] = true
				}
				continue
			}
			if len(seen) < 8 {
				seen = append(seen, name)
			}
		}
	}
	if usable[kindVideo] || usable[kindAudio] {
		return usable, nil
	}
	want := "receive"
	if publish {
		want = "send"
	}
	return usable, fmt.Errorf("%w: offered %v; want H264 (packetization-mode=1), VP8 or Opus in a section that can %s",
		ErrNoCodec, seen, want)
}

func directionOK(md *sdp.MediaDescription, publish bool) bool {
	dir := "sendrecv"
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			dir = a.Key
		}
	}
	if publish {
		return dir == "sendonly" || dir == "sendrecv"
	}
	return dir == "recvonly" || dir == "sendrecv"
}

// formatOf returns the rtpmap encoding name and the fmtp of payload type pt.
func formatOf(md *sdp.MediaDescription, pt string) (name, fmtp string) {
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			if p, rest, ok := strings.Cut(a.Value, " "); ok && p == pt {
				name, _, _ = strings.Cut(rest, "/")
			}
		case "fmtp":
			if p, rest, ok := strings.Cut(a.Value, " "); ok && p == pt {
				fmtp = rest
			}
		}
	}
	return name, fmtp
}
