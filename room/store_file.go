package room

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// FileStore keeps rooms in memory and writes them through to one JSON file,
// replaced atomically on every change, so rooms survive a restart.
type FileStore struct {
	path string
	now  func() time.Time

	mu    sync.RWMutex
	rooms map[string]Room

	retiredPath string    // dir/retired.json: deleted incarnations (incarnation_retire.go)
	retired     []Retired // guarded by mu
}

var _ Store = (*FileStore)(nil)

// OpenFileStore loads dir/rooms.json, creating dir if needed.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	s := &FileStore{path: filepath.Join(dir, "rooms.json"), now: time.Now, rooms: map[string]Room{},
		retiredPath: filepath.Join(dir, "retired.json")}
	if err := s.loadRetired(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path)
	switch {
	case os.IsNotExist(err):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("rooms: %w", err)
	}
	var list []Room
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("rooms: %s is corrupt: %w", s.path, err)
	}
	for _, r := range list {
		s.rooms[r.ID] = r
	}
	return s, nil
}

func (s *FileStore) Create(_ context.Context, r Room) (Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rooms[r.ID]; ok {
		return Room{}, fmt.Errorf("%w: %q", ErrExists, r.ID)
	}
	s.rooms[r.ID] = r
	if err := s.saveLocked(); err != nil {
		delete(s.rooms, r.ID)
		return Room{}, err
	}
	return r, nil
}

func (s *FileStore) Get(_ context.Context, id string) (Room, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.rooms[id]
	if !ok {
		return Room{}, notFound(id)
	}
	return r, nil
}

func (s *FileStore) List(_ context.Context) ([]Room, error) {
	s.mu.RLock()
	list := make([]Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		list = append(list, r)
	}
	s.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool {
		return list[i].CreatedAt.Before(list[j].CreatedAt) || (list[i].CreatedAt.Equal(list[j].CreatedAt) && list[i].ID < list[j].ID)
	})
	return list, nil
}

func (s *FileStore) Update(_ context.Context, id string, fn func(*Room) error) (Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rooms[id]
	if !ok {
		return Room{}, notFound(id)
	}
	r := old
	if err := fn(&r); err != nil {
		return Room{}, err
	}
	r.ID, r.Incarnation, r.CreatedAt = old.ID, old.Incarnation, old.CreatedAt // immutable
	if err := r.Validate(); err != nil {
		return Room{}, err
	}
	r.UpdatedAt = s.now().UTC()
	s.rooms[id] = r
	if err := s.saveLocked(); err != nil {
		s.rooms[id] = old
		return Room{}, err
	}
	return r, nil
}

func (s *FileStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rooms[id]
	if !ok {
		return notFound(id)
	}
	delete(s.rooms, id)
	if err := s.saveLocked(); err != nil {
		s.rooms[id] = old
		return err
	}
	// A crash here leaves the incarnation's data unswept, never lost.
	return s.retireLocked(Retired{ID: old.ID, Incarnation: old.Incarnation, DeletedAt: s.now().UTC()})
}

// saveLocked writes the whole set to a temp file, syncs it and renames it
// over the old one, so a crash leaves either the old or the new file.
func (s *FileStore) saveLocked() error {
	list := make([]Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		list = append(list, r)
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	return WriteFileAtomic(s.path, b, 0o640)
}

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old content or the new, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the rename itself durable
		d.Close()
	}
	return nil
}
