package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"liveroom/room"
)

// FileState is one node's chat state with moderation kept on disk: bans,
// timeouts, slow mode, blocked terms and known ranks survive a restart (a
// banned user stays banned, a host stays protected), while history, the
// review queue and slow-mode clocks stay in memory. Every moderation change
// rewrites one small JSON file atomically; moderation is rare next to chat,
// and a rank is written only when it is new, rises, or half its TTL has
// passed since it was last written.
type FileState struct {
	*MemoryState
	path string

	mu   sync.Mutex // serializes changes and file writes
	data moderationFile
}

var (
	_ Sanctions = (*FileState)(nil)
	_ Rules     = (*FileState)(nil)
	_ Ranks     = (*FileState)(nil)
)

type moderationFile struct {
	Rooms map[string]*roomModeration `json:"rooms"`
}

type roomModeration struct {
	Bans     map[string]bool      `json:"bans,omitempty"`
	BannedBy map[string]fileActor `json:"banned_by,omitempty"`
	Mutes    map[string]time.Time `json:"mutes,omitempty"`
	MutedBy  map[string]fileActor `json:"muted_by,omitempty"`
	Slow     int                  `json:"slow,omitempty"`
	Terms    []string             `json:"terms,omitempty"`
	Ranks    map[string]fileRank  `json:"ranks,omitempty"`
}

type fileActor struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

func (a fileActor) actor() Actor {
	r, _ := roleNamed(a.Role) // unknown: guest, which Binds reads as a moderator
	return Actor{ID: a.ID, Role: r}
}

type fileRank struct {
	Role  string    `json:"role"`
	Until time.Time `json:"until"`
}

// OpenFileState loads dir/moderation.json (creating dir) into a memory
// state that keeps historySize messages and heldMax held ones per room.
func OpenFileState(dir string, historySize, heldMax int) (*FileState, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	s := &FileState{MemoryState: NewMemoryState(historySize, heldMax), path: filepath.Join(dir, "moderation.json"),
		data: moderationFile{Rooms: map[string]*roomModeration{}}}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(b, &s.data); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", s.path, err)
	}
	if s.data.Rooms == nil {
		s.data.Rooms = map[string]*roomModeration{}
	}
	ctx := context.Background()
	for id, rm := range s.data.Rooms {
		for u := range rm.Bans {
			_ = s.MemoryState.Ban(ctx, id, u, rm.BannedBy[u].actor())
		}
		for u, until := range rm.Mutes {
			_ = s.MemoryState.Mute(ctx, id, u, until, rm.MutedBy[u].actor())
		}
		s.MemoryState.loadRanks(id, rm.Ranks)
		_ = s.MemoryState.SetSlow(ctx, id, rm.Slow)
		if len(rm.Terms) > 0 {
			if _, err := s.MemoryState.UpdateTerms(ctx, id, rm.Terms, nil, len(rm.Terms)); err != nil {
				return nil, fmt.Errorf("%s: terms of room %s: %w", s.path, id, err)
			}
		}
	}
	return s, nil
}

func (s *FileState) room(id string) *roomModeration {
	rm := s.data.Rooms[id]
	if rm == nil {
		rm = &roomModeration{}
		s.data.Rooms[id] = rm
	}
	return rm
}

// save writes the whole file; the caller holds s.mu.
func (s *FileState) save() error {
	b, err := json.Marshal(s.data)
	if err != nil {
		return err
	}
	if err := room.WriteFileAtomic(s.path, b, 0o640); err != nil {
		return fmt.Errorf("moderation state: %w", err)
	}
	return nil
}

func (s *FileState) Ban(ctx context.Context, roomID, userID string, by Actor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	undo := s.before(roomID)
	if err := s.MemoryState.Ban(ctx, roomID, userID, by); err != nil {
		return err
	}
	rm := s.room(roomID)
	if rm.Bans == nil {
		rm.Bans, rm.BannedBy = map[string]bool{}, map[string]fileActor{}
	}
	rm.Bans[userID] = true
	rm.BannedBy[userID] = fileActor{ID: by.ID, Role: by.Role.String()}
	return s.saveOrUndo(undo)
}

func (s *FileState) Unban(ctx context.Context, roomID, userID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	undo := s.before(roomID)
	was, err := s.MemoryState.Unban(ctx, roomID, userID)
	if err != nil {
		return was, err
	}
	rm := s.room(roomID)
	delete(rm.Bans, userID)
	delete(rm.BannedBy, userID)
	return was, s.saveOrUndo(undo)
}

func (s *FileState) Mute(ctx context.Context, roomID, userID string, until time.Time, by Actor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	undo := s.before(roomID)
	if err := s.MemoryState.Mute(ctx, roomID, userID, until, by); err != nil {
		return err
	}
	rm := s.room(roomID)
	now := time.Now()
	for u, t := range rm.Mutes { // expired timeouts need not survive
		if !t.After(now) {
			delete(rm.Mutes, u)
			delete(rm.MutedBy, u)
		}
	}
	if until.IsZero() {
		delete(rm.Mutes, userID)
		delete(rm.MutedBy, userID)
	} else {
		if rm.Mutes == nil {
			rm.Mutes, rm.MutedBy = map[string]time.Time{}, map[string]fileActor{}
		}
		rm.Mutes[userID] = until
		rm.MutedBy[userID] = fileActor{ID: by.ID, Role: by.Role.String()}
	}
	return s.saveOrUndo(undo)
}

func (s *FileState) SetSlow(ctx context.Context, roomID string, seconds int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	undo := s.before(roomID)
	if err := s.MemoryState.SetSlow(ctx, roomID, seconds); err != nil {
		return err
	}
	s.room(roomID).Slow = seconds
	return s.saveOrUndo(undo)
}

func (s *FileState) UpdateTerms(ctx context.Context, roomID string, add, remove []string, maxTerms int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	undo := s.before(roomID)
	terms, err := s.MemoryState.UpdateTerms(ctx, roomID, add, remove, maxTerms)
	if err != nil {
		return terms, err
	}
	s.room(roomID).Terms = append([]string(nil), terms...)
	if err := s.saveOrUndo(undo); err != nil {
		return nil, err
	}
	return terms, nil
}

func (s *FileState) SeeRank(_ context.Context, roomID, userID string, role room.Role, now time.Time, keep RankKeep) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.MemoryState
	m.mu.Lock()
	r := m.room(roomID)
	changed := r.seeRank(userID, role, now, keep)
	rm := s.room(roomID)
	if !changed {
		// Rewrite a mere sighting only once half the TTL has passed.
		written, ok := rm.Ranks[userID]
		changed = !ok || written.Until.Before(now.Add(keep.TTL/2))
	}
	if !changed {
		m.mu.Unlock()
		return nil
	}
	rm.Ranks = make(map[string]fileRank, len(r.ranks))
	for u, e := range r.ranks {
		rm.Ranks[u] = fileRank{Role: e.role.String(), Until: e.until}
	}
	m.mu.Unlock()
	return s.save()
}
