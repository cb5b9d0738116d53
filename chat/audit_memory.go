package chat

import (
	"context"
	"sync"
)

// MemoryAudit keeps the audit log in memory (tests, or no data dir).
type MemoryAudit struct {
	mu      sync.Mutex
	entries map[string][]AuditEntry
}

var _ AuditLog = (*MemoryAudit)(nil)

// NewMemoryAudit returns an empty in-memory audit log.
func NewMemoryAudit() *MemoryAudit { return &MemoryAudit{entries: map[string][]AuditEntry{}} }

func (a *MemoryAudit) Append(_ context.Context, e AuditEntry) (AuditEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.ID = uint64(len(a.entries[e.Room]) + 1)
	a.entries[e.Room] = append(a.entries[e.Room], e)
	return e, nil
}

func (a *MemoryAudit) Recent(_ context.Context, roomID string, limit int) ([]AuditEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	all := a.entries[roomID]
	if limit > 0 && len(all) > limit {
		all = all[len(all)-limit:]
	}
	return append([]AuditEntry(nil), all...), nil
}
