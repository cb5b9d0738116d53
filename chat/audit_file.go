package chat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"liveroom/room"
)

// FileAudit appends the audit log to one JSON-lines file per room under a
// directory (the node's data dir), synced on every entry: moderator actions
// are rare and must survive a restart. A torn last line after a crash is
// skipped on read.
type FileAudit struct {
	dir string

	mu   sync.Mutex
	next map[string]uint64 // next id per room, learned on first use
}

var _ AuditLog = (*FileAudit)(nil)

// OpenFileAudit uses dir, creating it if needed.
func OpenFileAudit(dir string) (*FileAudit, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &FileAudit{dir: dir, next: map[string]uint64{}}, nil
}

func (a *FileAudit) path(roomID string) (string, error) {
	if !room.ValidID(roomID) { // it becomes a file name
		return "", fmt.Errorf("audit log: bad room id %q", roomID)
	}
	return filepath.Join(a.dir, roomID+".jsonl"), nil
}

func (a *FileAudit) Append(_ context.Context, e AuditEntry) (AuditEntry, error) {
	p, err := a.path(e.Room)
	if err != nil {
		return AuditEntry{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	next, ok := a.next[e.Room]
	if !ok {
		all, err := a.read(p)
		if err != nil {
			return AuditEntry{}, err
		}
		next = 1
		if len(all) > 0 {
			next = all[len(all)-1].ID + 1
		}
	}
	e.ID = next
	line, err := json.Marshal(e)
	if err != nil {
		return AuditEntry{}, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit log: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit log: %w", err)
	}
	a.next[e.Room] = next + 1
	return e, nil
}

func (a *FileAudit) Recent(_ context.Context, roomID string, limit int) ([]AuditEntry, error) {
	p, err := a.path(roomID)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	all, err := a.read(p)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(all) > limit {
		all = all[len(all)-limit:]
	}
	return all, nil
}

// read loads every entry of one room's file (a log read by people, rarely).
func (a *FileAudit) read(p string) ([]AuditEntry, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	var out []AuditEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e AuditEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.ID > 0 {
			out = append(out, e)
		}
	}
	return out, nil
}
