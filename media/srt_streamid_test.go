package media

import (
	"errors"
	"testing"
)

func TestSRTStreamIDParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want srtStreamID
		ok   bool
	}{
		{"publish:shop1:k3y", srtStreamID{roomID: "shop1", key: "k3y", publish: true}, true},
		{"publish:shop1:a:b:c", srtStreamID{roomID: "shop1", key: "a:b:c", publish: true}, true},
		{"read:shop1:k3y", srtStreamID{roomID: "shop1", key: "k3y"}, true},
		{"#!::r=shop1,m=publish,s=k3y", srtStreamID{roomID: "shop1", key: "k3y", publish: true}, true},
		{"#!::s=k3y,u=obs,m=publish,r=shop1,t=stream", srtStreamID{roomID: "shop1", key: "k3y", publish: true}, true},
		{"#!::r=shop1,m=request,s=k3y", srtStreamID{roomID: "shop1", key: "k3y"}, true},
		{"#!::r=shop1,s=k3y", srtStreamID{roomID: "shop1", key: "k3y"}, true},
		{"", srtStreamID{}, false},
		{"shop1", srtStreamID{}, false},
		{"publish:shop1", srtStreamID{}, false},
		{"publish:shop1:", srtStreamID{}, false},
		{"publish::k3y", srtStreamID{}, false},
		{"play:shop1:k3y", srtStreamID{}, false},
		{"publish:a/b:k3y", srtStreamID{}, false},
		{"publish:a?b:k3y", srtStreamID{}, false},
		{"#!::", srtStreamID{}, false},
		{"#!::r=shop1,m=publish", srtStreamID{}, false},
		{"#!::r=shop1,m=bidirectional,s=k", srtStreamID{}, false},
		{"#!::r=shop1,r=shop2,m=publish,s=k", srtStreamID{}, false},
		{"#!::r=shop1,,m=publish,s=k", srtStreamID{}, false},
		{"#!::m=publish,s=k", srtStreamID{}, false},
		{"publish:shop1:" + string(make([]byte, 600)), srtStreamID{}, false},
	} {
		got, err := parseSRTStreamID(tc.in)
		if tc.ok {
			if err != nil || got != tc.want {
				t.Errorf("parseSRTStreamID(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadStreamID) {
			t.Errorf("parseSRTStreamID(%q) = %+v, %v; want ErrBadStreamID", tc.in, got, err)
		}
	}
}

// Seeds beyond these live in testdata/fuzz/FuzzSRTStreamID and run as
// regression cases with every plain `go test`.
func FuzzSRTStreamID(f *testing.F) {
	f.Add("publish:shop1:k3y")
	f.Add("#!::r=shop1,m=publish,s=k3y")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseSRTStreamID(s)
		if err != nil {
			if !errors.Is(err, ErrBadStreamID) {
				t.Fatalf("error %v is not ErrBadStreamID", err)
			}
			return
		}
		if id.roomID == "" || id.key == "" || len(s) > srtMaxStreamID {
			t.Fatalf("accepted %q as %+v", s, id)
		}
		if _, ok := rtspRoomID(id.roomID); !ok {
			t.Fatalf("accepted room id %q", id.roomID)
		}
	})
}
