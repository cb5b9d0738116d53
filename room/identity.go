// Package room is what a live room is and how nodes agree on it: the room
// registry and lifecycle, identity (tokens and roles), and the coordination
// interfaces shared by the other packages.
package room

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role orders what a user may do in a room: viewer < moderator < host < admin.
// The zero value is a guest (no token).
type Role int

const (
	RoleGuest Role = iota
	RoleViewer
	RoleModerator
	RoleHost
	RoleAdmin
)

var roleNames = [...]string{"guest", "viewer", "moderator", "host", "admin"}

func (r Role) String() string {
	if r < RoleGuest || r > RoleAdmin {
		return "unknown"
	}
	return roleNames[r]
}

// ParseRole parses a role as written in tokens; "guest" is not a token role.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == s {
			return Role(i), nil
		}
	}
	return RoleGuest, fmt.Errorf("unknown role %q (want viewer, moderator, host or admin)", s)
}

// AtLeast reports whether r may do what min may do.
func (r Role) AtLeast(min Role) bool { return r >= min }

// Identity is who is behind a request, as proved by a token (or a guest).
type Identity struct {
	ID   string // the token's sub; a generated id for guests
	Name string
	Role Role
	Room string // the room the token was minted for, or "*"
}

// Guest reports whether the identity carries no token.
func (id Identity) Guest() bool { return id.Role == RoleGuest }

// ErrUnauthorized is returned for any token that must not be accepted:
// bad signature, wrong algorithm, expired, malformed, or another room's.
var ErrUnauthorized = errors.New("unauthorized")

// AuthConfig is the `auth:` section of the configuration.
type AuthConfig struct {
	JWTSecret string `yaml:"jwt_secret"` // env LIVEROOM_JWT_SECRET; at least 16 bytes
	AdminKey  string `yaml:"admin_key"`  // env LIVEROOM_ADMIN_KEY; at least 16 bytes
}

// Validate checks the section; errors name the key.
func (c AuthConfig) Validate() error {
	if len(c.JWTSecret) < 16 {
		return errors.New("auth.jwt_secret: must be at least 16 characters")
	}
	if len(c.AdminKey) < 16 {
		return errors.New("auth.admin_key: must be at least 16 characters")
	}
	return nil
}

// Auth mints and verifies tokens. It holds no mutable state.
type Auth struct {
	secret   []byte
	adminKey string
	now      func() time.Time
}

// NewAuth builds an Auth from a validated config.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Auth{secret: []byte(cfg.JWTSecret), adminKey: cfg.AdminKey, now: time.Now}, nil
}

type claims struct {
	Name string `json:"name"`
	Role string `json:"role"`
	Room string `json:"room"`
	jwt.RegisteredClaims
}

// Mint signs a token for id, valid for ttl.
func (a *Auth) Mint(id Identity, ttl time.Duration) (string, error) {
	if id.ID == "" {
		return "", errors.New("mint: sub is required")
	}
	if id.Role <= RoleGuest || id.Role > RoleAdmin {
		return "", errors.New("mint: role must be viewer, moderator, host or admin")
	}
	if id.Room == "" {
		return "", errors.New("mint: room is required (a room id or *)")
	}
	if ttl <= 0 {
		return "", errors.New("mint: ttl must be positive")
	}
	now := a.now()
	c := claims{
		Name: id.Name, Role: id.Role.String(), Room: id.Room,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

// Verify checks a token for use in roomID ("" = any room, for admin-only
// routes) and returns who it names. Only HS256 is accepted; exp is required.
func (a *Auth) Verify(token, roomID string) (Identity, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
	)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	role, err := ParseRole(c.Role)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if c.Subject == "" || c.Room == "" {
		return Identity{}, fmt.Errorf("%w: token lacks sub or room", ErrUnauthorized)
	}
	if roomID != "" && c.Room != "*" && c.Room != roomID {
		return Identity{}, fmt.Errorf("%w: token is for another room", ErrUnauthorized)
	}
	name := c.Name
	if name == "" {
		name = c.Subject
	}
	return Identity{ID: c.Subject, Name: name, Role: role, Room: c.Room}, nil
}

// IsAdminKey reports whether key is the configured admin key, in constant time.
func (a *Auth) IsAdminKey(key string) bool {
	ka := sha256.Sum256([]byte(key))
	kb := sha256.Sum256([]byte(a.adminKey))
	return hmac.Equal(ka[:], kb[:])
}

// Bearer authenticates an Authorization bearer value for roomID: the admin
// key, a token, or (when streamKey is not empty) the room's stream key, which
// stands for the room's host.
func (a *Auth) Bearer(value, roomID, streamKey string) (Identity, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return Identity{}, fmt.Errorf("%w: no credentials", ErrUnauthorized)
	}
	if a.IsAdminKey(value) {
		return Identity{ID: "admin", Name: "admin", Role: RoleAdmin, Room: "*"}, nil
	}
	if streamKey != "" && hmac.Equal([]byte(value), []byte(streamKey)) {
		return Identity{ID: "host:" + roomID, Name: "host", Role: RoleHost, Room: roomID}, nil
	}
	return a.Verify(value, roomID)
}

// GuestIdentity returns a fresh guest identity with a generated id.
func GuestIdentity() Identity {
	return Identity{ID: "guest-" + RandomID(6), Name: "guest", Role: RoleGuest}
}

// RandomID returns n random bytes hex-encoded.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) string {
	const p = "bearer "
	if len(header) > len(p) && strings.EqualFold(header[:len(p)], p) {
		return strings.TrimSpace(header[len(p):])
	}
	return ""
}
