package media

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// fragment is a parsed RFC 8840 SDP fragment as WHIP/WHEP clients PATCH it.
type fragment struct {
	ufrag, pwd string
	cands      []fragCandidate
}

type fragCandidate struct {
	mid  string
	line string // "candidate:..."
}

const (
	maxFragmentBytes = 16 << 10
	maxFragmentCands = 64
)

func parseFragment(s string) (fragment, error) {
	var f fragment
	if len(s) > maxFragmentBytes {
		return f, fmt.Errorf("%w: %d bytes, limit %d", ErrBadFragment, len(s), maxFragmentBytes)
	}
	mid := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 1024), maxFragmentBytes)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return f, fmt.Errorf("%w: line %q", ErrBadFragment, truncate(line))
		}
		switch {
		case strings.HasPrefix(line, "m="):
			mid = ""
		case strings.HasPrefix(line, "a=mid:"):
			mid = line[len("a=mid:"):]
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = line[len("a=ice-ufrag:"):]
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.pwd = line[len("a=ice-pwd:"):]
		case strings.HasPrefix(line, "a=candidate:"):
			if len(f.cands) >= maxFragmentCands {
				return f, fmt.Errorf("%w: more than %d candidates", ErrBadFragment, maxFragmentCands)
			}
			f.cands = append(f.cands, fragCandidate{mid: mid, line: line[len("a="):]})
		}
	}
	if err := sc.Err(); err != nil {
		return f, fmt.Errorf("%w: %v", ErrBadFragment, err)
	}
	return f, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// iceCredentials returns the first ice-ufrag and ice-pwd in an SDP.
func iceCredentials(desc string) (ufrag, pwd string) {
	for line := range strings.Lines(desc) {
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := strings.CutPrefix(line, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	return ufrag, pwd
}

// patch implements RFC 9725 PATCH: trickled candidates (returns "") or an
// ICE restart (returns the server's new fragment).
func (p *peer) patch(ctx context.Context, frag string) (string, error) {
	f, err := parseFragment(frag)
	if err != nil {
		return "", err
	}
	p.sigMu.Lock()
	defer p.sigMu.Unlock()
	if p.closed() {
		return "", fmt.Errorf("%w: %s closed", ErrSessionNotFound, p.id)
	}
	rd := p.pc.RemoteDescription()
	if rd == nil {
		return "", fmt.Errorf("%w: no remote description", ErrBadFragment)
	}
	cur, _ := iceCredentials(rd.SDP)
	if f.ufrag != "" && f.ufrag != cur {
		return p.restartICE(ctx, rd.SDP, f)
	}
	return "", p.addCandidates(f)
}

func (p *peer) addCandidates(f fragment) error {
	for _, c := range f.cands {
		init := webrtc.ICECandidateInit{Candidate: c.line}
		if c.mid != "" {
			mid := c.mid
			init.SDPMid = &mid
		} else {
			idx := uint16(0)
			init.SDPMLineIndex = &idx
		}
		if err := p.pc.AddICECandidate(init); err != nil {
			return fmt.Errorf("%w: candidate %q: %v", ErrBadFragment, truncate(c.line), err)
		}
	}
	return nil
}

// restartICE replays the client's last offer with the new ICE credentials
// (what the client's own restart offer would contain, since nothing else may
// change in a WHIP/WHEP PATCH), answers it, and returns the server's new
// credentials and candidates as a fragment.
func (p *peer) restartICE(ctx context.Context, remote string, f fragment) (string, error) {
	if f.pwd == "" {
		return "", fmt.Errorf("%w: new ice-ufrag without ice-pwd", ErrICERestartUnsupported)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(remote); err != nil {
		return "", fmt.Errorf("%w: %v", ErrICERestartUnsupported, err)
	}
	d.Attributes = withICE(d.Attributes, f)
	for _, md := range d.MediaDescriptions {
		md.Attributes = withICE(md.Attributes, f)
	}
	raw, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrICERestartUnsupported, err)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(raw)}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrICERestartUnsupported, err)
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrICERestartUnsupported, err)
	}
	local, err := p.setLocal(ctx, ans)
	if err != nil {
		return "", err
	}
	if err := p.addCandidates(f); err != nil {
		return "", err
	}
	p.log.Info("ice restart")
	return answerFragment(local)
}

// withICE replaces ICE credentials and drops old candidates in attrs.
func withICE(attrs []sdp.Attribute, f fragment) []sdp.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		switch a.Key {
		case "ice-ufrag":
			a.Value = f.ufrag
		case "ice-pwd":
			a.Value = f.pwd
		case "candidate", "end-of-candidates":
			continue
		}
		out = append(out, a)
	}
	return out
}

// answerFragment extracts from a full answer what a restart response carries:
// ICE lite/options, BUNDLE group, then the first media section's m-line, mid,
// credentials and candidates (bundled sections share them).
func answerFragment(local string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(local); err != nil {
		return "", fmt.Errorf("parse own answer: %w", err)
	}
	if len(d.MediaDescriptions) == 0 {
		return "", fmt.Errorf("own answer has no media")
	}
	var b strings.Builder
	for _, a := range d.Attributes {
		switch a.Key {
		case "ice-lite", "ice-options", "group":
			b.WriteString("a=" + a.String() + "\r\n")
		}
	}
	ufrag, pwd := iceCredentials(local)
	md := d.MediaDescriptions[0]
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Port.Value != 0 {
			md = m // the first bundled section carries the candidates
			break
		}
	}
	fmt.Fprintf(&b, "m=%s\r\n", md.MediaName.String())
	for _, a := range md.Attributes {
		if a.Key == "mid" {
			b.WriteString("a=" + a.String() + "\r\n")
		}
	}
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	for _, a := range md.Attributes {
		if a.Key == "candidate" {
			b.WriteString("a=" + a.String() + "\r\n")
		}
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String(), nil
}
