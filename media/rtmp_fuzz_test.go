package media

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRTMPTarget: any publish URL (tcUrl joined with the publish name, as
// gortmplib builds it) either names a room and key within bounds or is
// refused; nothing panics. Seeds: testdata/fuzz/FuzzRTMPTarget.
func FuzzRTMPTarget(f *testing.F) {
	for _, s := range []string{
		"rtmp://h/live/sk_abc", "rtmp://h:1935/live/shop?key=sk_abc", "rtmp://h/live/", "rtmp://h/other/x",
		"rtmp://h/live/a/b", "rtmp://h/live/%2F?key=", "rtmps://h/live/x?key=a&key=b", "rtmp://h/live/x?key=%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		room, key, err := parseRTMPTarget(u)
		if err != nil {
			if room != "" || key != "" {
				t.Fatalf("refused %q but returned %q %q", raw, room, key)
			}
			return
		}
		if key == "" || len(key) > 4096 {
			t.Fatalf("%q: key %q", raw, key)
		}
		if strings.ContainsAny(room, "/?#\x00") || len(room) > 256 {
			t.Fatalf("%q: room %q", raw, room)
		}
	})
}

func TestParseRTMPTarget(t *testing.T) {
	for raw, want := range map[string][3]string{
		"rtmp://h/live/sk_abc":               {"", "sk_abc", ""},
		"rtmp://h/live/sk_abc/":              {"", "sk_abc", ""},
		"rtmp://h:1935/live/shop?key=sk_abc": {"shop", "sk_abc", ""},
		"rtmp://h/other/sk_abc":              {"", "", "err"},
		"rtmp://h/live":                      {"", "", "err"},
		"rtmp://h/live/a/b":                  {"", "", "err"},
	} {
		u, _ := url.Parse(raw)
		room, key, err := parseRTMPTarget(u)
		if got := [3]string{room, key, map[bool]string{true: "err", false: ""}[err != nil]}; got != want {
			t.Errorf("%s: got %q, want %q", raw, got, want)
		}
	}
}
