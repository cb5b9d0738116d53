package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testAuth(t *testing.T) *Auth {
	t.Helper()
	a, err := NewAuth(AuthConfig{JWTSecret: "0123456789abcdef0123", AdminKey: "admin-key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rawJWT builds a token by hand so tests can forge headers the library refuses to make.
func rawJWT(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if key == nil {
		return s + "."
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	a := testAuth(t)
	good, err := a.Mint(Identity{ID: "u1", Name: "Ann", Role: RoleModerator, Room: "r1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wild, _ := a.Mint(Identity{ID: "u2", Role: RoleAdmin, Room: "*"}, time.Hour)
	past := time.Now().Add(-2 * time.Hour).Unix()
	future := time.Now().Add(time.Hour).Unix()
	payload := func(exp int64) string {
		return `{"sub":"u1","name":"Ann","role":"host","room":"r1","exp":` + itoa(exp) + `}`
	}
	other := []byte("another-secret-0123456789")
	tests := []struct {
		name  string
		token string
		room  string
		ok    bool
	}{
		{"good", good, "r1", true},
		{"wildcard room", wild, "r9", true},
		{"other room", good, "r2", false},
		{"alg none", rawJWT(`{"alg":"none","typ":"JWT"}`, payload(future), nil), "r1", false},
		{"HS512", rawJWT(`{"alg":"HS512","typ":"JWT"}`, payload(future), a.secret), "r1", false},
		{"wrong key", rawJWT(`{"alg":"HS256","typ":"JWT"}`, payload(future), other), "r1", false},
		{"expired", rawJWT(`{"alg":"HS256","typ":"JWT"}`, payload(past), a.secret), "r1", false},
		{"no exp", rawJWT(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u1","role":"host","room":"r1"}`, a.secret), "r1", false},
		{"bad role", rawJWT(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u1","role":"owner","room":"r1","exp":`+itoa(future)+`}`, a.secret), "r1", false},
		{"hand-made good", rawJWT(`{"alg":"HS256","typ":"JWT"}`, payload(future), a.secret), "r1", true},
		{"garbage", "not.a.token", "r1", false},
		{"empty", "", "r1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Verify(tc.token, tc.room)
			if tc.ok && err != nil {
				t.Fatalf("got %v, want ok", err)
			}
			if !tc.ok && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("got id=%+v err=%v, want ErrUnauthorized", id, err)
			}
		})
	}
	id, _ := a.Verify(good, "r1")
	if id.ID != "u1" || id.Name != "Ann" || id.Role != RoleModerator {
		t.Fatalf("got %+v, want u1/Ann/moderator", id)
	}
}

// A token cannot claim one of the server's own identities: Mint refuses
// the subject, and Verify rejects it even when it is signed with our secret
// (by hand here, as another tool holding the secret would).
func TestReservedSubjects(t *testing.T) {
	a := testAuth(t)
	future := itoa(time.Now().Add(time.Hour).Unix())
	for _, sub := range []string{"admin", "Admin", "host:r1", "HOST:r1", "rtsp-pull", "edge:node-2", "guest-0011aabb", "\x00edge", "u\n1"} {
		t.Run(sub, func(t *testing.T) {
			if _, err := a.Mint(Identity{ID: sub, Role: RoleHost, Room: "r1"}, time.Hour); err == nil {
				t.Errorf("Mint: got a token for %q, want a refusal", sub)
			}
			js, _ := json.Marshal(sub)
			tok := rawJWT(`{"alg":"HS256","typ":"JWT"}`, `{"sub":`+string(js)+`,"role":"admin","room":"*","exp":`+future+`}`, a.secret)
			if id, err := a.Verify(tok, "r1"); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Verify: got %+v %v, want ErrUnauthorized", id, err)
			}
		})
	}
	for _, sub := range []string{"u1", "administrator", "hostess", "guest", "edge"} {
		tok, err := a.Mint(Identity{ID: sub, Role: RoleViewer, Room: "r1"}, time.Hour)
		if err != nil {
			t.Fatalf("Mint %q: %v", sub, err)
		}
		if id, err := a.Verify(tok, "r1"); err != nil || id.ID != sub || id.Kind != KindUser {
			t.Errorf("Verify %q: got %+v %v, want a user", sub, id, err)
		}
	}
}

// A guest token keeps a guest's id; anything else is not one.
func TestGuestToken(t *testing.T) {
	a := testAuth(t)
	g := GuestIdentity()
	tok := a.GuestToken(g.ID)
	id, err := a.VerifyGuest(tok)
	if err != nil || id.ID != g.ID || id.Kind != KindGuest || id.Role != RoleGuest {
		t.Fatalf("got %+v %v, want guest %s", id, err, g.ID)
	}
	other, _ := NewAuth(AuthConfig{JWTSecret: "another-secret-0123456789", AdminKey: "admin-key-0123456789"})
	jwtTok, _ := a.Mint(Identity{ID: "u1", Role: RoleViewer, Room: "r1"}, time.Hour)
	for name, bad := range map[string]string{
		"other secret":   other.GuestToken(g.ID),
		"other id":       strings.Replace(tok, g.ID, "guest-ffffffffffffffff", 1),
		"not a guest id": a.GuestToken("u1"),
		"a JWT":          jwtTok,
		"empty":          "",
		"garbage":        "g1.x",
	} {
		if id, err := a.VerifyGuest(bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: got %+v %v, want ErrUnauthorized", name, id, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
