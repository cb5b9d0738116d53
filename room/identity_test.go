package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
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

func TestBearer(t *testing.T) {
	a := testAuth(t)
	id, err := a.Bearer("admin-key-0123456789", "r1", "sk_x")
	if err != nil || id.Role != RoleAdmin {
		t.Fatalf("admin key: got %+v %v", id, err)
	}
	id, err = a.Bearer("sk_room1key", "r1", "sk_room1key")
	if err != nil || id.Role != RoleHost || id.Room != "r1" {
		t.Fatalf("stream key: got %+v %v", id, err)
	}
	if _, err := a.Bearer("sk_room1key", "r1", "sk_other"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong stream key: got %v, want ErrUnauthorized", err)
	}
	if _, err := a.Bearer("", "r1", ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("empty: got %v, want ErrUnauthorized", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
