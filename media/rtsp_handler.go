package media

import (
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtp"
)

// rtspHandler implements gortsplib's server callbacks. gortsplib parses and
// answers malformed requests itself, per connection; what arrives here is a
// well-formed request for one room, and nothing here can affect another.
type rtspHandler struct{ rs *RTSPServer }

var (
	_ gortsplib.ServerHandlerOnConnClose    = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnSessionClose = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnAnnounce     = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnSetup        = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnRecord       = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnDescribe     = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnPlay         = (*rtspHandler)(nil)
)

func (h *rtspHandler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.rs.log.Debug("rtsp connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

func (h *rtspHandler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.rs.caps.close(ctx.Session)
	reason := "closed"
	if ctx.Error != nil {
		reason = ctx.Error.Error()
	}
	switch u := ctx.Session.UserData().(type) {
	case *rtspSource:
		u.log.Info("rtsp publisher ended", "reason", reason)
		u.ended("rtsp: " + reason)
	case *rtspReader:
		h.rs.leave(u.roomID, u.stream)
		h.rs.s.rtspMetrics().sessions.WithLabelValues("read").Dec()
	}
}

// OnAnnounce authenticates a publisher and checks that browsers can play
// what it announces, before any media flows.
func (h *rtspHandler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	rs := h.rs
	if res := rs.caps.open(ctx.Session, ctx.Conn); res != nil {
		return res, nil
	}
	roomID, ok := rtspRoomID(ctx.Path)
	if !ok {
		return rtspStatus(base.StatusBadRequest, "Bad Request: publish to rtsp://host/{room}"), nil
	}
	cred := rtspCredentials(ctx.Request, ctx.Query)
	actx, cancel := rtspAuthContext()
	hostID, err := rs.deps.Auth.AuthorizePublish(actx, roomID, cred)
	cancel()
	if err != nil {
		return rs.authError(roomID, cred, err, "publish")
	}
	log := rs.log.With("room", roomID, "host", hostID, "remote", ctx.Conn.NetConn().RemoteAddr().String())
	plan, err := planRTSP(ctx.Description, rs.s.codecs)
	if err != nil {
		msg := err.Error()
		log.Warn("rtsp publish refused", "reason", msg)
		rs.s.rtspMetrics().errors.WithLabelValues("unplayable").Inc()
		rs.notice(roomID)(msg)
		return rtspStatus(base.StatusUnsupportedMediaType, "Unsupported Media Type: "+msg), nil
	}
	if r, ok := rs.s.lookup(roomID); ok {
		if err := r.checkPublisher(hostID); err != nil {
			log.Info("rtsp publish refused: another host is live")
			return rtspStatus(409, "Conflict: another host is publishing in this room"), nil
		}
	}
	for _, msg := range plan.dropped {
		log.Warn("rtsp track dropped", "reason", msg)
		rs.s.rtspMetrics().errors.WithLabelValues("unplayable").Inc()
		rs.notice(roomID)(msg)
	}
	ctx.Session.SetUserData(&rtspPending{roomID: roomID, hostID: hostID, plan: plan})
	return rtspStatus(base.StatusOK, ""), nil
}

func (h *rtspHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return rtspStatus(base.StatusOK, ""), nil, nil
	}
	if res := h.rs.caps.open(ctx.Session, ctx.Conn); res != nil {
		return res, nil, nil
	}
	if res := h.rs.caps.read(ctx.Session); res != nil {
		return res, nil, nil
	}
	res, rd, err := h.reader(ctx.Path, ctx.Query, ctx.Request)
	if rd == nil {
		return res, nil, err
	}
	if u, ok := ctx.Session.UserData().(*rtspReader); ok {
		if u.stream != rd {
			return rtspStatus(base.StatusNotFound, "Not Found: the room's stream changed"), nil, nil
		}
		return res, rd.stream, nil
	}
	roomID, _ := rtspRoomID(ctx.Path)
	if !h.rs.join(roomID, rd) {
		return rtspStatus(base.StatusNotFound, "Not Found: the room's stream ended"), nil, nil
	}
	ctx.Session.SetUserData(&rtspReader{roomID: roomID, stream: rd})
	h.rs.s.rtspMetrics().sessions.WithLabelValues("read").Inc()
	return res, rd.stream, nil
}

// OnRecord makes the publisher the room's source and starts the media.
func (h *rtspHandler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	rs := h.rs
	pend, ok := ctx.Session.UserData().(*rtspPending)
	if !ok {
		return rtspStatus(base.StatusBadRequest, ""), nil
	}
	s := rs.s
	r, release, err := s.acquire(pend.roomID)
	if err != nil {
		return rtspStatus(base.StatusServiceUnavailable, "Service Unavailable: server shutting down"), nil
	}
	defer release()
	ss := ctx.Session
	src := newRTSPSource(s, r, pend.hostID, "publish", ss.Close, rs.notice(pend.roomID))
	src.log = src.log.With("transport", transportName(ss))
	old, err := r.setSource(src)
	if err != nil {
		src.log.Info("rtsp publish refused", "err", err)
		return rtspStatus(409, "Conflict: another host is publishing in this room"), nil
	}
	if old != nil {
		src.log.Info("host reconnected over rtsp, replacing publisher")
		old.stop()
	}
	tracks, err := src.start(pend.plan, func(t *rtspTrack, p rtspTrackPlan) {
		// The publisher's sender reports relate its tracks on the room clock.
		t.ntp = func(pkt *rtp.Packet) (time.Time, bool) { return ss.PacketNTP(p.media, pkt) }
		ss.OnPacketRTP(p.media, p.format, t.onPacket)
	})
	if err != nil {
		r.closeSession(src, err.Error())
		return rtspStatus(base.StatusInternalServerError, ""), nil
	}
	s.openReadStream(src, tracks, pend.plan.tracks)
	ss.SetUserData(src)
	s.rtspMetrics().sessions.WithLabelValues("publish").Inc()
	r.sourceConnected(src)
	src.log.Info("rtsp publisher live", "tracks", len(tracks))
	return rtspStatus(base.StatusOK, ""), nil
}

// start attaches src's tracks to the room; register hooks each track to its
// RTSP media.
func (src *rtspSource) start(plan rtspPlan, register func(*rtspTrack, rtspTrackPlan)) ([]*rtspTrack, error) {
	tracks := make([]*rtspTrack, 0, len(plan.tracks))
	for _, p := range plan.tracks {
		t, err := newRTSPTrack(src, p, src.r.attach(src, p.kind, p.codec))
		if err != nil {
			return nil, err
		}
		tracks = append(tracks, t)
		register(t, p)
		src.log.Info("rtsp track", "kind", p.kind, "codec", p.format.Codec())
	}
	return tracks, nil
}

func transportName(ss *gortsplib.ServerSession) string {
	if t := ss.SetuppedTransport(); t != nil {
		return strings.ToLower(t.String())
	}
	return ""
}

func (h *rtspHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	res, rd, err := h.reader(ctx.Path, ctx.Query, ctx.Request)
	if rd == nil {
		return res, nil, err
	}
	return res, rd.stream, nil
}

// reader authorizes a DESCRIBE or play SETUP and finds the room's stream.
func (h *rtspHandler) reader(path, query string, req *base.Request) (*base.Response, *rtspReadStream, error) {
	rs := h.rs
	roomID, ok := rtspRoomID(path)
	if !ok {
		return rtspStatus(base.StatusNotFound, ""), nil, nil
	}
	cred := rtspCredentials(req, query)
	actx, cancel := rtspAuthContext()
	err := rs.deps.Auth.AuthorizeRead(actx, roomID, cred)
	cancel()
	if err != nil {
		res, err := rs.authError(roomID, cred, err, "read")
		return res, nil, err
	}
	rd := rs.readStream(roomID)
	if rd == nil {
		return rtspStatus(base.StatusNotFound, "Not Found: the room is not live"), nil, nil
	}
	return rtspStatus(base.StatusOK, ""), rd, nil
}

func (h *rtspHandler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	roomID, _ := rtspRoomID(ctx.Path)
	rd := h.rs.stream(roomID)
	u, _ := ctx.Session.UserData().(*rtspReader)
	if rd == nil || u == nil || u.stream != rd || rd.stream != ctx.Session.SetuppedStream() {
		return rtspStatus(base.StatusNotFound, "Not Found: the room's stream ended"), nil
	}
	if rd.tap != nil {
		rd.tap.play()
	}
	if !u.playing {
		u.playing = true
		h.rs.log.Info("rtsp reader joined", "room", roomID, "transport", transportName(ctx.Session), "tap", rd.tap != nil)
	}
	return rtspStatus(base.StatusOK, ""), nil
}
