package room

import (
	"strings"
	"testing"
	"time"
)

// The policy's answers for every kind of credential and action.
func TestAccessCheck(t *testing.T) {
	a := testAuth(t)
	secret := []byte("cluster-secret-0123456789")
	acc := NewAccess(a, secret)
	pub := &Room{ID: "r1", StreamKey: "sk_r1key"}
	priv := &Room{ID: "r2", StreamKey: "sk_r2key", Private: true}
	mint := func(sub string, role Role, roomID string) string {
		tok, err := a.Mint(Identity{ID: sub, Role: role, Room: roomID}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	const adminKey = "admin-key-0123456789"
	viewer, mod, host := mint("v1", RoleViewer, "r1"), mint("m1", RoleModerator, "r1"), mint("h1", RoleHost, "r1")
	privViewer := mint("v2", RoleViewer, "r2")
	adminTok, roomAdmin := mint("a1", RoleAdmin, "*"), mint("a2", RoleAdmin, "r1")
	edge := ClusterToken(secret, "node-2", "r1", time.Now())

	const ok, unauth, forbid = "", CodeUnauthorized, CodeForbidden
	tests := []struct {
		name     string
		act      Action
		rm       *Room
		cred     string
		min      Role
		want     string // "" = admitted
		wantKind Kind
	}{
		{"publish stream key", ActPublish, pub, "sk_r1key", 0, ok, KindStreamKey},
		{"publish host token", ActPublish, pub, host, 0, ok, KindUser},
		{"publish admin key", ActPublish, pub, adminKey, 0, ok, KindAdminKey},
		{"publish other room's key", ActPublish, pub, "sk_r2key", 0, unauth, 0},
		{"publish viewer", ActPublish, pub, viewer, 0, forbid, 0},
		{"publish nothing", ActPublish, pub, "", 0, unauth, 0},

		{"watch public, nothing", ActWatch, pub, "", 0, ok, KindGuest},
		{"watch private, nothing", ActWatch, priv, "", 0, unauth, 0},
		{"watch private, token", ActWatch, priv, privViewer, 0, ok, KindUser},
		{"watch stream key", ActWatch, pub, "sk_r1key", 0, unauth, 0},
		{"watch bad token", ActWatch, pub, "nope", 0, unauth, 0},

		{"join guest", ActJoin, pub, "", 0, ok, KindGuest},
		{"join private guest", ActJoin, priv, "", 0, unauth, 0},
		{"join viewer", ActJoin, pub, viewer, 0, ok, KindUser},
		{"join admin token", ActJoin, pub, adminTok, 0, ok, KindUser},
		{"join stream key", ActJoin, pub, "sk_r1key", 0, unauth, 0},
		{"join admin key", ActJoin, pub, adminKey, 0, unauth, 0},
		{"join other room's token", ActJoin, priv, viewer, 0, unauth, 0},

		{"room read, nothing", ActRoom, pub, "", RoleGuest, ok, KindGuest},
		{"room read private, nothing", ActRoom, priv, "", RoleGuest, unauth, 0},
		{"room host, stream key", ActRoom, pub, "sk_r1key", RoleHost, unauth, 0},
		{"room read, stream key", ActRoom, pub, "sk_r1key", RoleGuest, unauth, 0},
		{"room host, host", ActRoom, pub, host, RoleHost, ok, KindUser},
		{"room host, moderator", ActRoom, pub, mod, RoleHost, forbid, 0},
		{"room moderator, moderator", ActRoom, pub, mod, RoleModerator, ok, KindUser},
		{"room host, admin key", ActRoom, pub, adminKey, RoleHost, ok, KindAdminKey},
		{"room host, nothing", ActRoom, pub, "", RoleHost, unauth, 0},

		{"admin key", ActAdmin, nil, adminKey, 0, ok, KindAdminKey},
		{"admin token *", ActAdmin, nil, adminTok, 0, ok, KindUser},
		{"admin token one room", ActAdmin, nil, roomAdmin, 0, forbid, 0},
		{"admin with host", ActAdmin, nil, host, 0, forbid, 0},
		{"admin with stream key", ActAdmin, nil, "sk_r1key", 0, unauth, 0},
		{"admin nothing", ActAdmin, nil, "", 0, unauth, 0},

		{"edge cluster token", ActEdgePull, &Room{ID: "r1"}, edge, 0, ok, KindInternal},
		{"edge other room", ActEdgePull, &Room{ID: "r2"}, edge, 0, unauth, 0},
		{"edge admin key", ActEdgePull, &Room{ID: "r1"}, adminKey, 0, unauth, 0},
		{"edge host token", ActEdgePull, &Room{ID: "r1"}, host, 0, unauth, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := acc.Check(AccessRequest{Action: tc.act, Room: tc.rm, Credential: tc.cred, MinRole: tc.min})
			if tc.want == ok {
				if err != nil {
					t.Fatalf("got %v, want admitted", err)
				}
				if id.Kind != tc.wantKind {
					t.Fatalf("kind: got %v, want %v", id.Kind, tc.wantKind)
				}
				return
			}
			e := AsError(err)
			if e == nil || e.Code != tc.want {
				t.Fatalf("got %+v %v, want %s", id, err, tc.want)
			}
			if tc.cred != "" && strings.Contains(e.Message, tc.cred) {
				t.Fatalf("the refusal quotes the credential: %q", e.Message)
			}
		})
	}
}

// On one node (no cluster secret) no edge token is accepted.
func TestAccessEdgeWithoutSecret(t *testing.T) {
	a := testAuth(t)
	tok := ClusterToken(nil, "n", "r1", time.Now())
	if _, err := NewAccess(a, nil).Check(AccessRequest{Action: ActEdgePull, Room: &Room{ID: "r1"}, Credential: tok}); err == nil {
		t.Fatal("got admitted, want a refusal")
	}
}

// A guest token brings its guest back; a forged one gets a fresh guest.
func TestAccessGuest(t *testing.T) {
	a := testAuth(t)
	acc := NewAccess(a, nil)
	rm := &Room{ID: "r1"}
	first, err := acc.Check(AccessRequest{Action: ActJoin, Room: rm})
	if err != nil {
		t.Fatal(err)
	}
	again, err := acc.Check(AccessRequest{Action: ActJoin, Room: rm, Guest: a.GuestToken(first.ID)})
	if err != nil || again.ID != first.ID || again.Room != "r1" {
		t.Fatalf("with its guest token: got %+v %v, want %s", again, err, first.ID)
	}
	forged := "g1." + first.ID + ".AAAA"
	fresh, err := acc.Check(AccessRequest{Action: ActJoin, Room: rm, Guest: forged})
	if err != nil || fresh.ID == first.ID || fresh.Kind != KindGuest {
		t.Fatalf("forged guest token: got %+v %v, want a fresh guest", fresh, err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://cam:s3cret@10.0.0.5:554/live": "rtsp://10.0.0.5:554/live",
		"rtsp://10.0.0.5/live?key=sk_abc":     "rtsp://10.0.0.5/live",
		"rtsp://10.0.0.5/live":                "rtsp://10.0.0.5/live",
		"":                                    "",
		"rtsp://user:p%zz@host/x":             "",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
