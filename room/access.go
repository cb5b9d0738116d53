package room

import (
	"crypto/hmac"
	"net/url"
	"time"
)

// Access is the one admission policy: every entry point (WHIP, WHEP, RTSP,
// the room WebSocket, the admin API, the node-to-node edge route, and any
// ingest added later) asks Check what a credential lets its caller do, as
// mediamtx's auth manager answers every protocol server. Nothing else
// compares keys or reads tokens, so a credential means the same everywhere:
//
//   - the stream key is an ingest credential only: it publishes its room
//     (any ingest protocol), and is refused everywhere else;
//   - the admin key is for the HTTP APIs and ingest, never the WebSocket;
//   - a token is what it says (role, room), on every route;
//   - a cluster token is for node-to-node pulls only.
//
// Access holds no mutable state.
type Access struct {
	auth    *Auth
	cluster []byte
	now     func() time.Time
}

// NewAccess builds the policy over auth; clusterSecret (nil on one node)
// checks node-to-node requests.
func NewAccess(auth *Auth, clusterSecret []byte) *Access {
	return &Access{auth: auth, cluster: clusterSecret, now: time.Now}
}

// Action is what a caller asks to do.
type Action uint8

const (
	// ActPublish sends a room's media, over any ingest protocol.
	ActPublish Action = iota + 1
	// ActWatch receives a room's media (WHEP, RTSP read).
	ActWatch
	// ActJoin enters the room's WebSocket.
	ActJoin
	// ActRoom uses a room's HTTP API with at least MinRole (RoleGuest:
	// read what any member may read).
	ActRoom
	// ActAdmin uses the global admin API.
	ActAdmin
	// ActEdgePull is another node pulling a room this node is the origin of.
	ActEdgePull
)

var actionNames = [...]string{"", "publish", "watch", "join", "room", "admin", "edge_pull"}

func (a Action) String() string {
	if int(a) >= len(actionNames) || a == 0 {
		return "unknown"
	}
	return actionNames[a]
}

// AccessRequest is one question to the policy.
type AccessRequest struct {
	Action Action
	// Room is the room asked about; nil for ActAdmin. ActEdgePull reads
	// only its ID (the token is checked before the room is looked up).
	Room *Room
	// Credential is what the caller presented, whatever its channel (an
	// Authorization bearer, an RTSP password or ?key=, the WebSocket's
	// auth frame or ?token=): a token, a stream key, the admin key or a
	// cluster token. "" means none.
	Credential string
	// Guest is a guest token a browser kept (ActJoin without Credential).
	Guest string
	// MinRole is the least role ActRoom needs.
	MinRole Role
}

// Check answers req with who the caller is, or an *Error whose code is
// CodeUnauthorized (no or a bad credential, or one not accepted here) or
// CodeForbidden (a good credential without the rights). Messages are for
// the client and never quote the credential.
func (a *Access) Check(req AccessRequest) (Identity, error) {
	switch req.Action {
	case ActEdgePull:
		return a.edge(req)
	case ActAdmin:
		return a.admin(req)
	}
	if req.Room == nil {
		return Identity{}, Errorf(CodeUnauthorized, "no room")
	}
	rm := req.Room
	if req.Credential == "" {
		return a.anonymous(req)
	}
	id, err := a.identify(req.Credential, rm)
	if err != nil {
		return Identity{}, err
	}
	switch req.Action {
	case ActPublish:
		if !id.Role.AtLeast(RoleHost) {
			return Identity{}, Errorf(CodeForbidden, "only the room's host may publish")
		}
	case ActWatch:
		if id.Kind == KindStreamKey {
			return Identity{}, errStreamKeyOnly()
		}
	case ActJoin:
		switch id.Kind {
		case KindStreamKey:
			return Identity{}, errStreamKeyOnly()
		case KindAdminKey:
			return Identity{}, Errorf(CodeUnauthorized, "the admin key is not accepted here: use an admin token")
		}
	case ActRoom:
		if id.Kind == KindStreamKey {
			return Identity{}, errStreamKeyOnly()
		}
		if !id.Role.AtLeast(req.MinRole) {
			return Identity{}, Errorf(CodeForbidden, "this needs the %s role or higher", req.MinRole)
		}
	default:
		return Identity{}, Errorf(CodeUnauthorized, "unknown action")
	}
	return id, nil
}

func errStreamKeyOnly() *Error {
	return Errorf(CodeUnauthorized, "the stream key only publishes (WHIP, RTSP): use a token from your host or viewer link here")
}

// anonymous answers a caller with no credential.
func (a *Access) anonymous(req AccessRequest) (Identity, error) {
	rm := req.Room
	switch req.Action {
	case ActPublish:
		return Identity{}, Errorf(CodeUnauthorized, "publishing needs the room's stream key or a host token")
	case ActRoom:
		if req.MinRole > RoleGuest {
			return Identity{}, Errorf(CodeUnauthorized, "this needs a token with the %s role or higher", req.MinRole)
		}
	case ActWatch, ActJoin:
	default:
		return Identity{}, Errorf(CodeUnauthorized, "unknown action")
	}
	if rm.Private {
		return Identity{}, Errorf(CodeUnauthorized, "this room is private: a token is required")
	}
	id := GuestIdentity()
	if req.Action == ActJoin && req.Guest != "" {
		// A forged or stale guest token gets a fresh id rather than a
		// refusal: a guest id is no secret worth defending, and the page
		// keeps the new token from the welcome.
		if g, err := a.auth.VerifyGuest(req.Guest); err == nil {
			id = g
		}
	}
	id.Room = rm.ID
	return id, nil
}

// identify resolves a credential presented for rm: the admin key, the
// room's stream key, or a token for the room.
func (a *Access) identify(cred string, rm *Room) (Identity, error) {
	if a.auth.IsAdminKey(cred) {
		return Identity{ID: AdminID, Name: "admin", Role: RoleAdmin, Room: "*", Kind: KindAdminKey}, nil
	}
	if rm.StreamKey != "" && hmac.Equal([]byte(cred), []byte(rm.StreamKey)) {
		return Identity{ID: HostIDPrefix + rm.ID, Name: "host", Role: RoleHost, Room: rm.ID, Kind: KindStreamKey}, nil
	}
	id, err := a.auth.Verify(cred, rm.ID)
	if err != nil {
		return Identity{}, Errorf(CodeUnauthorized, "invalid, expired or other-room token")
	}
	if id.Incarnation != "" && id.Incarnation != rm.Incarnation {
		// Minted for an earlier room of this id, deleted since: its host
		// or moderators are not this room's.
		return Identity{}, Errorf(CodeUnauthorized, "this token is for a deleted room of the same id")
	}
	return id, nil
}

// admin: the admin key, or an admin token for every room ("*"). An admin
// token scoped to one room is that room's admin only.
func (a *Access) admin(req AccessRequest) (Identity, error) {
	if req.Credential == "" {
		return Identity{}, Errorf(CodeUnauthorized, "the admin API needs Authorization: Bearer <admin key or admin token>")
	}
	if a.auth.IsAdminKey(req.Credential) {
		return Identity{ID: AdminID, Name: "admin", Role: RoleAdmin, Room: "*", Kind: KindAdminKey}, nil
	}
	id, err := a.auth.Verify(req.Credential, "")
	if err != nil {
		return Identity{}, Errorf(CodeUnauthorized, "invalid credentials")
	}
	if !GlobalAdmin(id) {
		return Identity{}, Errorf(CodeForbidden, "the admin API needs the admin key or an admin token for room *")
	}
	return id, nil
}

// GlobalAdmin reports whether id administers every room.
func GlobalAdmin(id Identity) bool { return id.Role == RoleAdmin && id.Room == "*" }

// edge checks another node's cluster token for the room.
func (a *Access) edge(req AccessRequest) (Identity, error) {
	if req.Room == nil || len(a.cluster) == 0 {
		return Identity{}, Errorf(CodeUnauthorized, "node-to-node requests need a valid cluster token")
	}
	node, err := VerifyClusterToken(a.cluster, req.Credential, req.Room.ID, a.now())
	if err != nil {
		return Identity{}, Errorf(CodeUnauthorized, "node-to-node requests need a valid cluster token")
	}
	return Identity{ID: EdgeIDPrefix + node, Name: node, Role: RoleViewer, Room: req.Room.ID, Kind: KindInternal}, nil
}

// Refusal returns err as the policy's *Error (a generic unauthorized one if
// it is not one).
func Refusal(err error) *Error {
	if e := AsError(err); e != nil {
		return e
	}
	return Errorf(CodeUnauthorized, "unauthorized")
}

// RedactURL drops the user information (an RTSP camera's password) from a
// URL, for anyone but a global admin and for logs. A string that is not a
// URL is dropped whole.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.User = nil
	u.RawQuery, u.ForceQuery, u.Fragment = "", false, "" // a ?key= is a credential too
	return u.String()
}
