package media

import (
	"net/url"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// A pull URL reaches the logs without its password, query or fragment:
// any of them may carry a credential.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://cam.local:554/stream", "rtsp://cam.local:554/stream"},
		{"rtsp://user:s3cret@cam.local/stream", "rtsp://user:xxxxx@cam.local/stream"},
		{"rtsp://cam.local/live?key=s3cret", "rtsp://cam.local/live"},
		{"rtsp://user:s3cret@cam.local/live?token=s3cret&x=1#s3cret", "rtsp://user:xxxxx@cam.local/live"},
		{"rtsps://cam.local/live?", "rtsps://cam.local/live"},
	} {
		pu, err := url.Parse(tc.in) // base.ParseURL refuses fragments
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		u := (*base.URL)(pu)
		got := redactURL(u)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("redactURL(%s): got %q, want %q", tc.in, got, tc.want)
		}
		if u.String() != tc.in {
			t.Errorf("redactURL changed its argument: %s became %s", tc.in, u)
		}
	}
}
