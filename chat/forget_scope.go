package chat

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ForgetScope removes a room incarnation's chat state (history, held
// messages, bans, timeouts, ranks, rules): the retired-incarnation sweep
// calls it once a deleted room's retention has passed.
func (s *MemoryState) ForgetScope(_ context.Context, scope string) error {
	s.mu.Lock()
	delete(s.rooms, scope)
	s.mu.Unlock()
	return nil
}

// ForgetScope removes the scope's state from memory and from the file.
func (s *FileState) ForgetScope(ctx context.Context, scope string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.MemoryState.ForgetScope(ctx, scope)
	if _, ok := s.data.Rooms[scope]; !ok {
		return nil
	}
	delete(s.data.Rooms, scope)
	return s.save()
}

// ForgetScope removes the scope's audit log.
func (a *MemoryAudit) ForgetScope(_ context.Context, scope string) error {
	a.mu.Lock()
	delete(a.entries, scope)
	a.mu.Unlock()
	return nil
}

// ForgetScope removes the scope's audit file.
func (a *FileAudit) ForgetScope(_ context.Context, scope string) error {
	p, err := a.path(scope)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.next, scope)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}
