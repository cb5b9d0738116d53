package web

import (
	"net/http"
	"time"

	"liveroom/room"
)

// edgePost serves another node's pull of a room this node is the origin of
// (cluster mode; see media.SFU.Pull). The caller proves it is a node of the
// cluster with a cluster token for this room. The session it gets is a
// viewer session counted as an edge; it ends like any WHEP session, with a
// DELETE of the returned Location, or when its connection closes.
func (s *Server) edgePost(w http.ResponseWriter, r *http.Request) {
	if len(s.deps.ClusterSecret) == 0 {
		s.notFound(w, r)
		return
	}
	// The token first: without one, nobody learns whether the room exists.
	node, err := room.VerifyClusterToken(s.deps.ClusterSecret, room.BearerToken(r.Header.Get("Authorization")), r.PathValue("room"), time.Now())
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized", "node-to-node requests need a valid cluster token")
		return
	}
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	offer, ok := s.readOffer(w, r)
	if !ok {
		return
	}
	sess, err := s.deps.Media.SubscribeEdge(r.Context(), rm.ID, offer)
	if err != nil {
		s.mediaError(w, err)
		return
	}
	s.log.Info("edge pull served", "room", rm.ID, "edge", node, "session", sess.ID)
	s.writeAnswer(w, "/whep/"+rm.ID+"/"+sess.ID, sess)
}
