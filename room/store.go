package room

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
	"unicode/utf8"
)

// Status is where a room is in its lifecycle.
type Status string

const (
	StatusScheduled Status = "scheduled" // created, host not live yet
	StatusLive      Status = "live"      // a publisher is streaming
	StatusEnded     Status = "ended"     // the show is over
)

// Room is one live room. StreamKey is a secret: show it to hosts and admins only.
type Room struct {
	ID string `json:"id"`
	// Incarnation tells this room from an earlier one of the same id (see
	// Scope); empty for rooms stored before incarnations existed.
	Incarnation string     `json:"incarnation,omitempty"`
	Title       string     `json:"title"`
	Status      Status     `json:"status"`
	StreamKey   string     `json:"stream_key,omitempty"`
	Private     bool       `json:"private"`
	GuestChat   bool       `json:"guest_chat"`
	Source      string     `json:"source,omitempty"` // RTSP URL the server pulls, if any
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`

	// Record: the room's shows are recorded; nil = the server's default
	// (record.default).
	Record *bool `json:"record,omitempty"`
	// CheckoutURL overrides cart.checkout_url for this room's orders
	// (docs/orders.md); the web layer validates it.
	CheckoutURL string `json:"checkout_url,omitempty"`
}

// Public returns the room without its secrets: the stream key, and the
// pulled source URL (it usually carries the camera's credentials).
func (r Room) Public() Room {
	r.StreamKey = ""
	r.Source = ""
	return r
}

var (
	ErrNotFound = errors.New("room not found")
	ErrExists   = errors.New("room already exists")
)

// ValidationError names the field that is wrong.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

var roomIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidID reports whether id can name a room (it appears in URLs and RTSP paths).
func ValidID(id string) bool { return roomIDPattern.MatchString(id) }

// Validate checks the fields a client can set.
func (r Room) Validate() error {
	if !ValidID(r.ID) {
		return &ValidationError{"id", "must be 1-64 of a-z, 0-9, '-' or '_', starting with a letter or digit"}
	}
	if r.Incarnation != "" && !ValidIncarnation(r.Incarnation) {
		return &ValidationError{"incarnation", "must be 1-32 letters or digits"}
	}
	if r.Title == "" || utf8.RuneCountInString(r.Title) > 200 || !utf8.ValidString(r.Title) {
		return &ValidationError{"title", "must be 1-200 characters of valid UTF-8"}
	}
	switch r.Status {
	case StatusScheduled, StatusLive, StatusEnded:
	default:
		return &ValidationError{"status", "must be scheduled, live or ended"}
	}
	if r.Source != "" {
		u, err := url.Parse(r.Source)
		if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
			return &ValidationError{"source", "must be an rtsp:// or rtsps:// URL"}
		}
	}
	return nil
}

// Store keeps the rooms. One node uses the file store; a cluster shares Redis.
type Store interface {
	Create(ctx context.Context, r Room) (Room, error)
	Get(ctx context.Context, id string) (Room, error)
	List(ctx context.Context) ([]Room, error)
	// Update applies fn to the stored room atomically; fn's error aborts.
	Update(ctx context.Context, id string, fn func(*Room) error) (Room, error)
	Delete(ctx context.Context, id string) error
}

// NewRoom fills in what the server decides for a room a client asked for.
func NewRoom(r Room, now time.Time) (Room, error) {
	if r.Status == "" {
		r.Status = StatusScheduled
	}
	r.StreamKey = "sk_" + RandomID(16)
	r.Incarnation = newIncarnation()
	r.CreatedAt, r.UpdatedAt = now.UTC(), now.UTC()
	if err := r.Validate(); err != nil {
		return Room{}, err
	}
	return r, nil
}

func notFound(id string) error { return fmt.Errorf("%w: %q", ErrNotFound, id) }
