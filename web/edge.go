package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"liveroom/media"
	"liveroom/room"
)

// EdgeOrigin is what the node-to-node edge route needs from the media
// server: a session that pulls a room this node is the origin of.
type EdgeOrigin interface {
	SubscribeEdge(ctx context.Context, roomID, offerSDP string) (media.Session, error)
	ICEServers() []media.ICEServer
}

// edgePost serves another node's pull of a room this node is the origin of
// (see media.Edges and EdgeClient). The caller proves it is a node of the
// cluster with a cluster token for this room. The session it gets is a
// viewer session counted as an edge; it ends like any WHEP session, with a
// DELETE of the returned Location, or when its connection closes.
func (s *Server) edgePost(w http.ResponseWriter, r *http.Request) {
	if len(s.deps.ClusterSecret) == 0 {
		s.notFound(w, r)
		return
	}
	// The token first: without one, nobody learns whether the room exists.
	caller, ok := s.allow(w, r, room.ActEdgePull, &room.Room{ID: r.PathValue("room")}, room.RoleViewer)
	if !ok {
		return
	}
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	offer, ok := s.readOffer(w, r, s.deps.Edge != nil)
	if !ok {
		return
	}
	sess, err := s.deps.Edge.SubscribeEdge(r.Context(), rm.ID, offer)
	if err != nil {
		s.mediaError(w, err)
		return
	}
	s.log.Info("edge pull served", "room", rm.ID, "edge", caller.Name, "session", sess.ID)
	s.writeAnswer(w, "/whep/"+rm.ID+"/"+sess.ID, sess, s.deps.Edge.ICEServers())
}

// EdgeClient is the calling half of the edge route: it carries an edge's
// offer to the origin node's POST /internal/v1/edge/{room}, found in the
// node registry, with a cluster token (a media.NodeSignal).
type EdgeClient struct {
	self   string
	secret []byte
	nodes  room.Registry
	client *http.Client
}

var _ media.NodeSignal = (*EdgeClient)(nil).Signal

// NewEdgeClient signals as node self, with the cluster's shared secret.
func NewEdgeClient(self string, secret []byte, nodes room.Registry) *EdgeClient {
	return &EdgeClient{self: self, secret: secret, nodes: nodes, client: &http.Client{Timeout: 10 * time.Second}}
}

// Signal POSTs the offer to node and returns its answer; hangup DELETEs
// the session it created there.
func (c *EdgeClient) Signal(ctx context.Context, node, roomID, offer string) (string, func(context.Context), error) {
	base, err := c.nodeURL(ctx, node)
	if err != nil {
		return "", nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/internal/v1/edge/"+url.PathEscape(roomID), strings.NewReader(offer))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+room.ClusterToken(c.secret, c.self, roomID, time.Now()))
	resp, err := c.client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", nil, fmt.Errorf("origin answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), c.hangup(resp.Request.URL, resp.Header.Get("Location")), nil
}

// hangup DELETEs the session at location (relative to the request), if any.
func (c *EdgeClient) hangup(base *url.URL, location string) func(context.Context) {
	l, err := base.Parse(location)
	if location == "" || err != nil {
		return nil
	}
	return func(ctx context.Context) {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, l.String(), nil)
		if err != nil {
			return
		}
		if resp, err := c.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

func (c *EdgeClient) nodeURL(ctx context.Context, id string) (string, error) {
	nodes, err := c.nodes.Nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ID == id && n.HTTPURL != "" {
			return strings.TrimRight(n.HTTPURL, "/"), nil
		}
	}
	return "", fmt.Errorf("origin node %q is not in the registry", id)
}
