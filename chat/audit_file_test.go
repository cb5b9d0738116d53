package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"liveroom/chat"
)

// A crash can leave the audit file's last line torn. The next append cuts
// the torn part off (or ends a complete entry that lost only its newline),
// so every complete entry and the new one read back, and the file is whole
// JSON lines again.
func TestFileAuditRepairsTornLastLine(t *testing.T) {
	tests := []struct {
		name    string
		cut     func(lastLine int) int // bytes to cut, given the last line's length with its newline
		reopen  bool                   // a restart after the crash (else the same process goes on)
		wantIDs []uint64
	}{
		{"intact", func(int) int { return 0 }, true, []uint64{1, 2, 3, 4}},
		{"torn mid-line", func(n int) int { return n / 2 }, true, []uint64{1, 2, 3}},
		{"one byte of the line left", func(n int) int { return n - 1 }, true, []uint64{1, 2, 3}},
		{"only the newline lost", func(int) int { return 1 }, true, []uint64{1, 2, 3, 4}},
		{"torn while running", func(n int) int { return n / 2 }, false, []uint64{1, 2, 3}},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := openFileAudit(t, dir)
			for i := range 3 {
				if _, err := log.Append(ctx, chat.AuditEntry{Room: "r", Action: "ban", UserID: fmt.Sprint("u", i)}); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(dir, "r.jsonl")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			last := len(b) - bytes.LastIndexByte(b[:len(b)-1], '\n') - 1
			if err := os.Truncate(p, int64(len(b)-tc.cut(last))); err != nil {
				t.Fatal(err)
			}
			if tc.reopen {
				log = openFileAudit(t, dir)
			}
			added, err := log.Append(ctx, chat.AuditEntry{Room: "r", Action: "unban", UserID: "new"})
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.wantIDs[len(tc.wantIDs)-1]; added.ID != want {
				t.Fatalf("new entry: got id %d, want %d", added.ID, want)
			}
			for _, l := range []*chat.FileAudit{log, openFileAudit(t, dir)} {
				got, err := l.Recent(ctx, "r", 0)
				if err != nil {
					t.Fatal(err)
				}
				var ids []uint64
				for _, e := range got {
					ids = append(ids, e.ID)
				}
				if !slices.Equal(ids, tc.wantIDs) || got[len(got)-1].UserID != "new" {
					t.Fatalf("entries: got ids %v (last %+v), want %v ending with the new one", ids, got[len(got)-1], tc.wantIDs)
				}
			}
			b, _ = os.ReadFile(p)
			for i, line := range bytes.SplitAfter(b, []byte("\n")) {
				var e chat.AuditEntry
				if len(line) > 0 && (line[len(line)-1] != '\n' || json.Unmarshal(line, &e) != nil) {
					t.Errorf("line %d of the repaired file is not a whole entry: %q", i+1, line)
				}
			}
		})
	}
}
