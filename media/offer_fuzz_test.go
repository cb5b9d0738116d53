package media

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Seeds beyond these (real browser/OBS/pion offers) live in
// testdata/fuzz/FuzzCheckOffer and testdata/fuzz/FuzzParseFragment.

func FuzzCheckOffer(f *testing.F) {
	f.Add("", true)
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n", true)
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=recvonly\r\n", false)
	f.Add("v=0\r\nm=video 0 RTP/AVP 102\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n", true)
	codecs := newCodecTable()
	f.Fuzz(func(t *testing.T, offer string, publish bool) {
		_, err := checkOffer(offer, codecs, publish)
		if err != nil && !errors.Is(err, ErrBadOffer) && !errors.Is(err, ErrNoCodec) {
			t.Fatalf("error %v is neither ErrBadOffer nor ErrNoCodec", err)
		}
	})
}

func FuzzParseFragment(f *testing.F) {
	f.Add("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n")
	f.Add("a=end-of-candidates\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, frag string) {
		fr, err := parseFragment(frag)
		if err != nil {
			if !errors.Is(err, ErrBadFragment) {
				t.Fatalf("error %v is not ErrBadFragment", err)
			}
			return
		}
		for _, c := range fr.cands {
			if !strings.HasPrefix(c.line, "candidate:") {
				t.Fatalf("candidate line %q", c.line)
			}
		}
	})
}

func TestParseFragment(t *testing.T) {
	cases := []struct {
		name       string
		in         string
		ufrag, pwd string
		cands      int
		mid        string
		err        error
	}{
		{"trickle", "a=ice-ufrag:u1\r\na=ice-pwd:p1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n", "u1", "p1", 1, "0", nil},
		{"end only", "a=end-of-candidates\r\n", "", "", 0, "", nil},
		{"not sdp", "hello\r\n", "", "", 0, "", ErrBadFragment},
		{"too many candidates", strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n", maxFragmentCands+1), "", "", 0, "", ErrBadFragment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseFragment(c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("err: got %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if f.ufrag != c.ufrag || f.pwd != c.pwd || len(f.cands) != c.cands {
				t.Errorf("got ufrag %q pwd %q %d candidates, want %q %q %d", f.ufrag, f.pwd, len(f.cands), c.ufrag, c.pwd, c.cands)
			}
			if c.cands > 0 && f.cands[0].mid != c.mid {
				t.Errorf("candidate mid: got %q, want %q", f.cands[0].mid, c.mid)
			}
		})
	}
}

// TestCheckOfferRealClients runs the real offers kept as fuzz seeds (pion,
// Chrome WHEP, OBS WHIP) through checkOffer: they must be accepted in their
// own direction and refused in the other (unless sendrecv).
func TestCheckOfferRealClients(t *testing.T) {
	codecs := newCodecTable()
	dir := filepath.Join("testdata", "fuzz", "FuzzCheckOffer")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(raw), "\n")
			offer, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
			if err != nil {
				t.Fatal(err)
			}
			publish := lines[2] == "bool(true)"
			if _, err := checkOffer(offer, codecs, publish); err != nil {
				t.Errorf("own direction: got %v, want nil", err)
			}
			if strings.Contains(offer, "a=sendrecv") {
				return // usable both ways
			}
			if _, err := checkOffer(offer, codecs, !publish); !errors.Is(err, ErrNoCodec) {
				t.Errorf("other direction: got %v, want ErrNoCodec", err)
			}
		})
	}
}
