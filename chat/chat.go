// Package chat is a room's chat and its moderation: message validation and
// history, likes, timeouts, bans, slow mode, blocked terms, the review queue
// for off-platform selling, the moderators' audit log and per-user rate
// limits. It plugs into the room hub as a set of message handlers.
package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/room"
)

// Config is the `chat:` section of the configuration.
type Config struct {
	MaxLength   int `yaml:"max_length"`   // characters per message
	HistorySize int `yaml:"history_size"` // messages in the welcome (and kept per room)
	HeldMax     int `yaml:"held_max"`     // messages waiting for review per room
	// ChatRate/ChatBurst: messages per second per user; LikeRate/LikeBurst:
	// like frames per second per user (each carries up to 50 likes).
	ChatRate   float64       `yaml:"chat_rate"`
	ChatBurst  int           `yaml:"chat_burst"`
	LikeRate   float64       `yaml:"like_rate"`
	LikeBurst  int           `yaml:"like_burst"`
	MaxTimeout time.Duration `yaml:"max_timeout"` // longest mod.timeout
	MaxSlow    time.Duration `yaml:"max_slow"`    // longest slow-mode interval
	MaxTerms   int           `yaml:"max_terms"`   // blocked terms per room
	// HoldSelling sends messages that look like off-platform selling to the
	// review queue instead of the room.
	HoldSelling bool `yaml:"hold_selling"`
	// KnownRolesMax: users per room whose moderating role is remembered
	// (to refuse an action against them while they are away); beyond it the
	// lowest role seen longest ago is forgotten. KnownRolesTTL: how long a
	// role is remembered after its user was last seen.
	KnownRolesMax int           `yaml:"known_roles_max"`
	KnownRolesTTL time.Duration `yaml:"known_roles_ttl"`
}

// DefaultConfig returns the defaults; YAML is decoded over them.
func DefaultConfig() Config {
	return Config{
		MaxLength: 500, HistorySize: 50, HeldMax: 200,
		ChatRate: 1, ChatBurst: 5, LikeRate: 5, LikeBurst: 10,
		MaxTimeout: 24 * time.Hour, MaxSlow: time.Hour, MaxTerms: 500,
		HoldSelling:   true,
		KnownRolesMax: 1000, KnownRolesTTL: 30 * 24 * time.Hour,
	}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("chat.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.MaxLength < 1 || c.MaxLength > 4000 {
		bad("max_length", "must be 1-4000, got %d", c.MaxLength)
	}
	if c.HistorySize < 1 || c.HistorySize > 1000 {
		bad("history_size", "must be 1-1000, got %d", c.HistorySize)
	}
	if c.HeldMax < 1 || c.HeldMax > 10000 {
		bad("held_max", "must be 1-10000, got %d", c.HeldMax)
	}
	if c.ChatRate <= 0 {
		bad("chat_rate", "must be positive, got %g", c.ChatRate)
	}
	if c.ChatBurst < 1 {
		bad("chat_burst", "must be at least 1, got %d", c.ChatBurst)
	}
	if c.LikeRate <= 0 {
		bad("like_rate", "must be positive, got %g", c.LikeRate)
	}
	if c.LikeBurst < 1 {
		bad("like_burst", "must be at least 1, got %d", c.LikeBurst)
	}
	if c.MaxTimeout < time.Second {
		bad("max_timeout", "must be at least 1s, got %s", c.MaxTimeout)
	}
	if c.MaxSlow < time.Second {
		bad("max_slow", "must be at least 1s, got %s", c.MaxSlow)
	}
	if c.MaxTerms < 0 || c.MaxTerms > 100000 {
		bad("max_terms", "must be 0-100000, got %d", c.MaxTerms)
	}
	if c.KnownRolesMax < 1 || c.KnownRolesMax > 100000 {
		bad("known_roles_max", "must be 1-100000, got %d", c.KnownRolesMax)
	}
	if c.KnownRolesTTL < time.Minute {
		bad("known_roles_ttl", "must be at least 1m, got %s", c.KnownRolesTTL)
	}
	return errors.Join(errs...)
}

// Deps are the values chat is built from. State implementations left nil
// get one shared MemoryState; a nil Audit gets a MemoryAudit (cmd passes a
// FileAudit under the data dir).
type Deps struct {
	Hub       *room.Hub
	Rooms     room.Store
	History   History
	Held      Held
	Sanctions Sanctions
	Rules     Rules
	Ranks     Ranks
	Audit     AuditLog
	Log       *slog.Logger
	Metrics   prometheus.Registerer
	Now       func() time.Time // nil: time.Now
	// OnPost, if set, is told who posted a message that went out (the
	// cart's "has chatted" giveaway rule); it must not block.
	OnPost func(ctx context.Context, roomID, userID string)
}

// Service is chat for every room of a hub.
type Service struct {
	cfg       Config
	hub       *room.Hub
	rooms     room.Store
	history   History
	held      Held
	sanctions Sanctions
	rules     Rules
	ranks     Ranks
	audit     AuditLog
	log       *slog.Logger
	now       func() time.Time
	m         *metrics

	chatLimit *limiter
	likeLimit *limiter
	onPost    func(ctx context.Context, roomID, userID string)

	termsMu sync.Mutex
	terms   map[string]compiledTerms
}

type compiledTerms struct {
	version uint64
	set     *phraseSet
}

// New builds chat and registers its message kinds, its join check (bans)
// and its welcome fields on the hub.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Hub == nil || deps.Rooms == nil {
		return nil, errors.New("chat: Hub and Rooms are required")
	}
	mem := NewMemoryState(cfg.HistorySize, cfg.HeldMax)
	s := &Service{
		cfg: cfg, hub: deps.Hub, rooms: deps.Rooms,
		history: deps.History, held: deps.Held, sanctions: deps.Sanctions, rules: deps.Rules, ranks: deps.Ranks, audit: deps.Audit,
		log: deps.Log, now: deps.Now, onPost: deps.OnPost,
		chatLimit: newLimiter(cfg.ChatRate, cfg.ChatBurst),
		likeLimit: newLimiter(cfg.LikeRate, cfg.LikeBurst),
		terms:     map[string]compiledTerms{},
	}
	if s.history == nil {
		s.history = mem
	}
	if s.held == nil {
		s.held = mem
	}
	if s.sanctions == nil {
		s.sanctions = mem
	}
	if s.rules == nil {
		s.rules = mem
	}
	if s.ranks == nil {
		s.ranks = mem
	}
	if s.audit == nil {
		s.audit = NewMemoryAudit()
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s.m = m

	h := s.hub
	h.Handle("chat.send", room.RoleGuest, s.send) // guests: only where the room allows it
	h.Handle("like", room.RoleGuest, s.like)
	h.Handle("mod.delete", room.RoleModerator, s.modDelete)
	h.Handle("mod.timeout", room.RoleModerator, s.modTimeout)
	h.Handle("mod.ban", room.RoleModerator, s.modBan)
	h.Handle("mod.unban", room.RoleModerator, s.modUnban)
	h.Handle("mod.slow", room.RoleModerator, s.modSlow)
	h.Handle("mod.terms", room.RoleModerator, s.modTerms)
	h.Handle("mod.approve", room.RoleModerator, s.modApprove)
	h.Handle("mod.reject", room.RoleModerator, s.modReject)
	h.OnJoin(s.checkJoin)
	h.AddSnapshot(s.snapshot)
	return s, nil
}

// ModerationLog returns the room's last limit audit entries, oldest first,
// for GET /api/v1/rooms/{room}/moderation/log.
func (s *Service) ModerationLog(ctx context.Context, roomID string, limit int) ([]AuditEntry, error) {
	entries, err := s.audit.Recent(ctx, roomID, limit)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []AuditEntry{}
	}
	return entries, nil
}

// checkJoin keeps banned users out of the room (unless their role now is
// at least their banner's) and remembers the rank of those who moderate.
func (s *Service) checkJoin(ctx context.Context, roomID string, who room.Identity) error {
	// Guests too: a browser keeps its guest id (a signed guest token).
	if err := s.seeRank(ctx, roomID, who); err != nil {
		return err
	}
	st, err := s.sanctions.Standing(ctx, roomID, who.ID)
	if err != nil {
		return err
	}
	if st.Banned && st.BannedBy.Binds(who.Role) {
		return room.Errorf(room.CodeBanned, "you are banned from this room")
	}
	return nil
}

// snapshot adds chat's part of the welcome: slow_s and the recent history;
// moderators also get the review queue and the blocked terms.
func (s *Service) snapshot(ctx context.Context, snap *room.Snapshot) error {
	slow, err := s.rules.Slow(ctx, snap.Room)
	if err != nil {
		return err
	}
	snap.SetRoom("slow_s", slow)
	msgs, err := s.history.Recent(ctx, snap.Room)
	if err != nil {
		return err
	}
	hist := make([]room.Event, 0, len(msgs))
	for _, m := range msgs {
		// Messages published after the welcome's seq reach the client live.
		if m.Seq > snap.Seq {
			continue
		}
		hist = append(hist, m.event())
	}
	snap.Set("history", hist)
	if st, err := s.sanctions.Standing(ctx, snap.Room, snap.You.ID); err == nil && st.MutedUntil.After(s.now()) && st.MutedBy.Binds(snap.You.Role) {
		snap.Set("muted_until", st.MutedUntil.UnixMilli())
	}
	if snap.You.Role.AtLeast(room.RoleModerator) {
		held, err := s.held.List(ctx, snap.Room)
		if err != nil {
			return err
		}
		if held == nil {
			held = []Message{}
		}
		snap.Set("held", held)
		terms, _, err := s.rules.Terms(ctx, snap.Room)
		if err != nil {
			return err
		}
		if terms == nil {
			terms = []string{}
		}
		snap.Set("terms", terms)
	}
	return nil
}

// blockedTerms returns the room's compiled blocked terms, recompiling only
// when the list changed.
func (s *Service) blockedTerms(ctx context.Context, roomID string) (*phraseSet, error) {
	terms, ver, err := s.rules.Terms(ctx, roomID)
	if err != nil {
		return nil, err
	}
	s.termsMu.Lock()
	defer s.termsMu.Unlock()
	if c, ok := s.terms[roomID]; ok && c.version == ver {
		return c.set, nil
	}
	set := newPhraseSet(terms)
	s.terms[roomID] = compiledTerms{version: ver, set: set}
	return set, nil
}

type metrics struct {
	messages   *prometheus.CounterVec // result
	likes      prometheus.Counter
	moderation *prometheus.CounterVec // action
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "liveroom", Subsystem: "chat", Name: "messages_total",
			Help: "chat.send outcomes: posted, held, approved, or the error code."}, []string{"result"}),
		likes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "liveroom", Subsystem: "chat", Name: "likes_total",
			Help: "Likes counted."}),
		moderation: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "liveroom", Subsystem: "chat", Name: "moderation_actions_total",
			Help: "Moderator actions, by action."}, []string{"action"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.likes, m.moderation} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("chat metrics: %w", err)
		}
	}
	return m, nil
}
