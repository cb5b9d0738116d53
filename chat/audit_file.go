package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"liveroom/room"
)

// FileAudit appends the audit log to one JSON-lines file per room under a
// directory (the node's data dir), synced on every entry: moderator actions
// are rare and must survive a restart. A crash can tear the last line: the
// next append cuts the torn part off (an entry that lost only its newline
// gets it back) before it writes, so no entry is lost with it.
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
	if !room.ValidScope(roomID) { // it becomes a file name
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
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	e, err = a.append(f, e)
	if err != nil {
		delete(a.next, e.Room) // learn it again from what the file holds
		return AuditEntry{}, fmt.Errorf("audit log: %w", err)
	}
	a.next[e.Room] = e.ID + 1
	return e, nil
}

// append writes e to the room's open file f after repairing its end.
func (a *FileAudit) append(f *os.File, e AuditEntry) (AuditEntry, error) {
	end, repaired, err := repairTail(f)
	if err != nil {
		return e, err
	}
	next, ok := a.next[e.Room]
	if !ok || repaired {
		all, err := a.read(f.Name())
		if err != nil {
			return e, err
		}
		next = 1
		if len(all) > 0 {
			next = all[len(all)-1].ID + 1
		}
	}
	e.ID = next
	line, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	if _, err := f.WriteAt(append(line, '\n'), end); err != nil {
		return e, err
	}
	return e, f.Sync()
}

// repairTail makes f end with a whole line: a torn last line is cut off,
// a whole entry that lost only its newline gets it. It returns where the
// next line goes and whether it changed anything.
func repairTail(f *os.File) (int64, bool, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size := st.Size()
	last := []byte{'\n'}
	if size > 0 {
		if _, err := f.ReadAt(last, size-1); err != nil {
			return 0, false, err
		}
	}
	if last[0] == '\n' {
		return size, false, nil
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, size))
	if err != nil {
		return 0, false, err
	}
	start := int64(bytes.LastIndexByte(b, '\n') + 1)
	if _, ok := decodeAuditLine(b[start:]); ok {
		_, err := f.WriteAt([]byte{'\n'}, size)
		return size + 1, true, err
	}
	return start, true, f.Truncate(start)
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
	for line := range bytes.Lines(b) {
		if e, ok := decodeAuditLine(line); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// decodeAuditLine reads one line of the file; a torn one is not an entry.
func decodeAuditLine(line []byte) (AuditEntry, bool) {
	var e AuditEntry
	return e, json.Unmarshal(line, &e) == nil && e.ID > 0
}
