// Package room is what a live room is and how nodes agree on it: the room
// registry and lifecycle, identity (tokens and roles), and the coordination
// interfaces shared by the other packages.
package room

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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

// Kind is how an identity was proved. Only the server decides it (from the
// credential it checked): a token's claims cannot name one.
type Kind uint8

const (
	KindUser      Kind = iota // a signed token's subject
	KindGuest                 // no token: a generated id, kept by a signed guest token
	KindStreamKey             // a room's stream key: its host, for ingest only
	KindAdminKey              // the configured admin key
	KindInternal              // the server itself: an RTSP pull, another node's edge pull
)

var kindNames = [...]string{"user", "guest", "stream_key", "admin_key", "internal"}

func (k Kind) String() string {
	if int(k) >= len(kindNames) {
		return "unknown"
	}
	return kindNames[k]
}

// Identity is who is behind a request, as proved by a token (or a guest).
type Identity struct {
	ID   string // the token's sub; a generated id for guests
	Name string
	Role Role
	Room string // the room the token was minted for, or "*"
	Kind Kind
	// Incarnation is the incarnation of Room the token was minted in (its
	// `inc` claim): such a token is refused by a room deleted and created
	// again with the same id. "" = any incarnation.
	Incarnation string
}

// The subjects of the identities the server makes up itself. A token may
// not name them (Mint refuses, Verify rejects), so that nobody can pose as
// the admin key, a stream-key host, a pull or another node, nor take over a
// guest's id.
const (
	AdminID         = "admin"     // the admin key
	HostIDPrefix    = "host:"     // "host:{room}": the room's stream key
	PullID          = "rtsp-pull" // a room's pulled RTSP source (media.pullHostID)
	EdgeIDPrefix    = "edge:"     // "edge:{node}": another node pulling a room
	GuestIDPrefix   = "guest-"    // generated guest ids
	maxSubjectBytes = 128
)

// ReservedSubject reports whether sub is a subject no token may carry: one
// of the server's own identities (compared without case), or one with
// control characters (media's edge host id is "\x00edge").
func ReservedSubject(sub string) bool {
	l := strings.ToLower(sub)
	if l == AdminID || l == PullID {
		return true
	}
	for _, p := range []string{HostIDPrefix, EdgeIDPrefix, GuestIDPrefix} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	for _, r := range sub {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
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
	Inc  string `json:"inc,omitempty"` // Identity.Incarnation
	jwt.RegisteredClaims
}

// Mint signs a token for id, valid for ttl.
func (a *Auth) Mint(id Identity, ttl time.Duration) (string, error) {
	if id.ID == "" {
		return "", errors.New("mint: sub is required")
	}
	if ReservedSubject(id.ID) {
		return "", fmt.Errorf("mint: sub %q is reserved for the server's own identities", id.ID)
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
		Name: id.Name, Role: id.Role.String(), Room: id.Room, Inc: id.Incarnation,
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
	if ReservedSubject(c.Subject) {
		// Signed with our secret but not by Mint: never one of ours.
		return Identity{}, fmt.Errorf("%w: token names a reserved subject", ErrUnauthorized)
	}
	if roomID != "" && c.Room != "*" && c.Room != roomID {
		return Identity{}, fmt.Errorf("%w: token is for another room", ErrUnauthorized)
	}
	name := c.Name
	if name == "" {
		name = c.Subject
	}
	return Identity{ID: c.Subject, Name: name, Role: role, Room: c.Room, Kind: KindUser, Incarnation: c.Inc}, nil
}

// IsAdminKey reports whether key is the configured admin key, in constant time.
func (a *Auth) IsAdminKey(key string) bool {
	ka := sha256.Sum256([]byte(key))
	kb := sha256.Sum256([]byte(a.adminKey))
	return hmac.Equal(ka[:], kb[:])
}

// GuestIdentity returns a fresh guest identity with a generated id.
func GuestIdentity() Identity {
	return Identity{ID: GuestIDPrefix + RandomID(8), Name: "guest", Role: RoleGuest, Kind: KindGuest}
}

// Guest tokens let a browser keep one guest id across reconnects (so a
// guest's ban and slow mode hold): "g1.<id>.<mac>", the MAC an HMAC-SHA256
// of the id with the JWT secret. They never expire; rotating the secret
// gives every guest a new id.
const guestTokenPrefix = "g1."

// GuestToken signs a guest id.
func (a *Auth) GuestToken(id string) string {
	return guestTokenPrefix + id + "." + a.guestMAC(id)
}

// VerifyGuest checks a guest token and returns the guest it names.
func (a *Auth) VerifyGuest(tok string) (Identity, error) {
	rest, ok := strings.CutPrefix(tok, guestTokenPrefix)
	i := strings.LastIndexByte(rest, '.')
	if !ok || i < 0 {
		return Identity{}, fmt.Errorf("%w: not a guest token", ErrUnauthorized)
	}
	id, mac := rest[:i], rest[i+1:]
	if !strings.HasPrefix(id, GuestIDPrefix) || len(id) > maxSubjectBytes ||
		!hmac.Equal([]byte(mac), []byte(a.guestMAC(id))) {
		return Identity{}, fmt.Errorf("%w: bad guest token", ErrUnauthorized)
	}
	return Identity{ID: id, Name: "guest", Role: RoleGuest, Kind: KindGuest}, nil
}

func (a *Auth) guestMAC(id string) string {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte("liveroom-guest\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
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
