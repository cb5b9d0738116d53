package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"liveroom/record"
	"liveroom/room"
)

// In a cluster a show's segments are on the nodes that recorded them
// (record.ClusterLibrary keeps the manifest). A node asked for a file it
// does not hold fetches it from the holder's GET /internal/v1/replay/…,
// the same cluster-authenticated node-to-node path as edge pulls (a
// cluster token for the room, EdgeClient), and passes it on as it comes.

// remoteShows is a show library whose files may be on another node.
type remoteShows interface {
	Remote(ctx context.Context, roomID, showID, name, rangeHdr string) (*http.Response, error)
}

// internalReplay serves another node a show file this node holds; never
// forwarded again (no loops).
func (s *Server) internalReplay(w http.ResponseWriter, r *http.Request) {
	if len(s.deps.ClusterSecret) == 0 {
		s.notFound(w, r)
		return
	}
	roomID, showID, name := r.PathValue("room"), r.PathValue("show"), r.PathValue("file")
	if _, ok := s.allow(w, r, room.ActEdgePull, &room.Room{ID: roomID}, room.RoleViewer); !ok {
		return
	}
	if name == "index.m3u8" {
		s.showError(w, record.ErrNoShow) // the playlist comes from the manifest
		return
	}
	s.serveLocalFile(w, r, roomID, showID, name)
}

// proxyReplay passes on the holder's answer for a file not on this node;
// false: no node holds it (the caller answers 404).
func (s *Server) proxyReplay(w http.ResponseWriter, r *http.Request, roomID, showID, name string) bool {
	rs, ok := s.deps.Shows.(remoteShows)
	if !ok {
		return false
	}
	resp, err := rs.Remote(r.Context(), roomID, showID, name, r.Header.Get("Range"))
	if errors.Is(err, record.ErrNoShow) {
		return false
	}
	if err != nil {
		s.log.Warn("replay proxy", "room", roomID, "show", showID, "file", name, "err", err)
		writeError(w, http.StatusBadGateway, "unavailable", "the node holding this recording does not answer")
		return true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		s.log.Warn("replay proxy", "room", roomID, "show", showID, "file", name, "status", resp.StatusCode)
		writeError(w, http.StatusBadGateway, "unavailable", "the node holding this recording does not answer")
		return true
	}
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "Cache-Control"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

// ReplayFile GETs a show file from node (a record.FetchFunc); the caller
// closes the body.
func (c *EdgeClient) ReplayFile(ctx context.Context, node, roomID, showID, name, rangeHdr string) (*http.Response, error) {
	base, err := c.nodeURL(ctx, node)
	if err != nil {
		return nil, err
	}
	u := base + "/internal/v1/replay/" + url.PathEscape(roomID) + "/" + url.PathEscape(showID) + "/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+room.ClusterToken(c.secret, c.self, roomID, time.Now()))
	if rangeHdr != "" {
		req.Header.Set("Range", rangeHdr)
	}
	// No client timeout: a segment streams through; ctx (the viewer's
	// request) bounds it.
	resp, err := replayClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("%w on node %s", record.ErrNoShow, node)
	}
	return resp, nil
}

var replayClient = &http.Client{Transport: http.DefaultTransport}

var _ record.FetchFunc = (*EdgeClient)(nil).ReplayFile
