package web

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
)

// static holds the pages and their assets; no build step is needed.
//
//go:embed static
var static embed.FS

func (s *Server) pageRoutes(m *http.ServeMux) {
	assets, _ := fs.Sub(static, "static") // cannot fail: "static" is embedded above
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(assets)))
	m.HandleFunc("GET /{$}", s.page(assets, "lobby.html", false))
	m.HandleFunc("GET /r/{room}", s.page(assets, "viewer.html", true))
	m.HandleFunc("GET /studio/{room}", s.page(assets, "studio.html", true))
	m.HandleFunc("GET /mod/{room}", s.page(assets, "mod.html", true))
}

// page serves one embedded HTML file; room pages 404 for unknown rooms so a
// mistyped link says so at once.
func (s *Server) page(assets fs.FS, name string, roomPage bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if roomPage {
			id := r.PathValue("room")
			if _, err := s.deps.Rooms.Get(r.Context(), id); err != nil {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">`+
					`<title>Room not found</title><p>This room does not exist (any more). <a href="/">See the rooms that are live</a>.</p>`)
				return
			}
		}
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			writeError(w, http.StatusNotFound, "not_found", "page not available")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		// Pages load only their own scripts and talk only to this server.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: https:; media-src 'self' blob:; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // tokens travel in the fragment; never leak the URL
		_, _ = w.Write(b)
	}
}
