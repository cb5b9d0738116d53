package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzWHEPOffer throws arbitrary bodies and content types at the WHEP
// endpoint: every answer is a 201 with an SDP answer or a 4xx JSON error,
// never a panic or a 5xx, and accepted sessions are closed again.
func FuzzWHEPOffer(f *testing.F) {
	n := newTestNode(f)
	n.createRoom("fz", false)
	f.Add("application/sdp", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
	f.Add("application/sdp", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n")
	f.Add("application/sdp", "")
	f.Add("text/plain", "hello")
	f.Add("application/sdp; charset=utf-8", "\x00\x01\x02")
	f.Fuzz(func(t *testing.T, ctype, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/whep/fz", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		n.srv.Config.Handler.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			loc := rec.Header().Get("Location")
			if !strings.HasPrefix(loc, "/whep/fz/") || !strings.Contains(rec.Body.String(), "v=0") {
				t.Fatalf("201 without a Location or an SDP answer: %q %q", loc, rec.Body.String())
			}
			del := httptest.NewRecorder()
			n.srv.Config.Handler.ServeHTTP(del, httptest.NewRequest("DELETE", loc, nil))
			if del.Code != http.StatusOK {
				t.Fatalf("delete accepted session: got %d", del.Code)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
				t.Fatalf("status %d with a body that is not a JSON error: %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("got status %d for content type %q body %q", rec.Code, ctype, body)
		}
	})
}
