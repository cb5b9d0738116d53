package media_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// whipWHEP is a minimal stand-in for package web, enough to exercise the
// mediatest HTTP signalers against the real SFU.
func whipWHEP(s *media.SFU) http.Handler {
	mux := http.NewServeMux()
	status := func(err error) int {
		switch {
		case errors.Is(err, media.ErrPublisherConflict):
			return http.StatusConflict
		case errors.Is(err, media.ErrSessionNotFound):
			return http.StatusNotFound
		case errors.Is(err, media.ErrBadOffer), errors.Is(err, media.ErrNoCodec):
			return http.StatusBadRequest
		}
		return http.StatusInternalServerError
	}
	create := func(publish bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			room := r.PathValue("room")
			var sess media.Session
			var err error
			if publish {
				host := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				sess, err = s.Publish(r.Context(), room, host, string(body))
			} else {
				sess, err = s.Subscribe(r.Context(), room, string(body))
			}
			if err != nil {
				http.Error(w, err.Error(), status(err))
				return
			}
			w.Header().Set("Content-Type", "application/sdp")
			w.Header().Set("Location", r.URL.Path+"/"+sess.ID)
			w.Header().Set("ETag", sess.ETag)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, sess.AnswerSDP)
		}
	}
	del := func(w http.ResponseWriter, r *http.Request) {
		if err := s.Close(r.PathValue("room"), r.PathValue("id")); err != nil {
			http.Error(w, err.Error(), status(err))
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("POST /whip/{room}", create(true))
	mux.HandleFunc("POST /whep/{room}", create(false))
	mux.HandleFunc("DELETE /whip/{room}/{id}", del)
	mux.HandleFunc("DELETE /whep/{room}/{id}", del)
	return mux
}

func TestHTTPSignalers(t *testing.T) {
	s := newSFU(t)
	srv := httptest.NewServer(whipWHEP(s.SFU))
	defer srv.Close()
	ctx := testCtx(t, 30*time.Second)

	whip := mediatest.WHIP(srv.URL+"/whip/h", "alice")
	pub, err := mediatest.NewPublisher(ctx, whip.Signal, mediatest.PublisherOptions{Clip: clip(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	whep := mediatest.WHEP(srv.URL+"/whep/h", "")
	v, err := mediatest.NewViewer(ctx, whep.Signal, mediatest.ViewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	waitStats(t, ctx, v, "media over WHIP/WHEP", func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 })
	if !strings.HasPrefix(whep.Location(), srv.URL+"/whep/h/") || whep.ETag() == "" {
		t.Errorf("WHEP Location %q ETag %q", whep.Location(), whep.ETag())
	}

	_, err = mediatest.NewPublisher(ctx, mediatest.WHIP(srv.URL+"/whip/h", "mallory").Signal, mediatest.PublisherOptions{Clip: clip(t)})
	var se *mediatest.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Errorf("second host over WHIP: got %v, want HTTP 409", err)
	}

	if err := whep.Delete(ctx); err != nil {
		t.Errorf("WHEP DELETE: %v", err)
	}
	if err := whip.Delete(ctx); err != nil {
		t.Errorf("WHIP DELETE: %v", err)
	}
	if s.Viewers("h") != 0 || s.Live("h") {
		t.Errorf("after DELETEs: viewers %d live %v, want 0 false", s.Viewers("h"), s.Live("h"))
	}
	if err := whep.Delete(ctx); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("second DELETE: got %v, want HTTP 404", err)
	}
}
