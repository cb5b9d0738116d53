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
// timeouts, slow mode and blocked terms survive a restart (a banned user
// stays banned), while history, the review queue and slow-mode clocks stay
// in memory. Every moderation change rewrites one small JSON file
// atomically; moderation is rare next to chat.
type FileState struct {
	*MemoryState
	path string

	mu   sync.Mutex // serializes changes and file writes
	data moderationFile
}

var (
	_ Sanctions = (*FileState)(nil)
	_ Rules     = (*FileState)(nil)
)

type moderationFile struct {
	Rooms map[string]*roomModeration `json:"rooms"`
}

type roomModeration struct {
	Bans  map[string]bool      `json:"bans,omitempty"`
	Mutes map[string]time.Time `json:"mutes,omitempty"`
	Slow  int                  `json:"slow,omitempty"`
	Terms []string             `json:"terms,omitempty"`
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
			_ = s.MemoryState.Ban(ctx, id, u)
		}
		for u, until := range rm.Mutes {
			_ = s.MemoryState.Mute(ctx, id, u, until)
		}
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

func (s *FileState) Ban(ctx context.Context, roomID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.MemoryState.Ban(ctx, roomID, userID); err != nil {
		return err
	}
	rm := s.room(roomID)
	if rm.Bans == nil {
		rm.Bans = map[string]bool{}
	}
	rm.Bans[userID] = true
	return s.save()
}

func (s *FileState) Unban(ctx context.Context, roomID, userID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was, err := s.MemoryState.Unban(ctx, roomID, userID)
	if err != nil {
		return was, err
	}
	delete(s.room(roomID).Bans, userID)
	return was, s.save()
}

func (s *FileState) Mute(ctx context.Context, roomID, userID string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.MemoryState.Mute(ctx, roomID, userID, until); err != nil {
		return err
	}
	rm := s.room(roomID)
	now := time.Now()
	for u, t := range rm.Mutes { // expired timeouts need not survive
		if !t.After(now) {
			delete(rm.Mutes, u)
		}
	}
	if until.IsZero() {
		delete(rm.Mutes, userID)
	} else {
		if rm.Mutes == nil {
			rm.Mutes = map[string]time.Time{}
		}
		rm.Mutes[userID] = until
	}
	return s.save()
}

func (s *FileState) SetSlow(ctx context.Context, roomID string, seconds int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.MemoryState.SetSlow(ctx, roomID, seconds); err != nil {
		return err
	}
	s.room(roomID).Slow = seconds
	return s.save()
}

func (s *FileState) UpdateTerms(ctx context.Context, roomID string, add, remove []string, maxTerms int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	terms, err := s.MemoryState.UpdateTerms(ctx, roomID, add, remove, maxTerms)
	if err != nil {
		return terms, err
	}
	s.room(roomID).Terms = append([]string(nil), terms...)
	return terms, s.save()
}
