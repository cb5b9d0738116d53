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
	return usable, fmt.Errorf("%w: offered %v; want H264 (packetization-mode=1), VP8, Opus or G.711 (PCMU/PCMA) in a section that can %s",
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
// The static G.711 payload types may come without an rtpmap (RFC 3551).
func formatOf(md *sdp.MediaDescription, pt string) (name, fmtp string) {
	switch pt {
	case "0":
		name = "PCMU"
	case "8":
		name = "PCMA"
	}
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

// preferOpus moves Opus to the front of every audio section's format list
// of a publisher's offer. pion keeps the offer's order in its answer, and
// the offerer sends the first codec of the answer it can: a publisher that
// offers G.711 before Opus (as some SIP-minded encoders do) still sends
// Opus. Anything it cannot make sense of is returned unchanged.
func preferOpus(offer string) string {
	lines := strings.SplitAfter(offer, "\n")
	changed := false
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "m=audio ") {
			continue
		}
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "m=") {
			end++
		}
		opus := map[string]bool{}
		for _, l := range lines[i+1 : end] {
			v, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), "a=rtpmap:")
			if !ok {
				continue
			}
			pt, enc, _ := strings.Cut(v, " ")
			if name, _, _ := strings.Cut(enc, "/"); strings.EqualFold(name, "opus") {
				opus[pt] = true
			}
		}
		body := strings.TrimRight(lines[i], "\r\n")
		eol := lines[i][len(body):]
		f := strings.Fields(body)
		if len(opus) > 0 && len(f) > 4 && !opus[f[3]] {
			pts := f[3:]
			var first, rest []string
			for _, pt := range pts {
				if opus[pt] {
					first = append(first, pt)
				} else {
					rest = append(rest, pt)
				}
			}
			lines[i] = strings.Join(append(f[:3:3], append(first, rest...)...), " ") + eol
			changed = true
		}
		i = end - 1
	}
	if !changed {
		return offer
	}
	return strings.Join(lines, "")
}
