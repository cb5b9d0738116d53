package chat_test

import (
	"testing"

	"liveroom/chat"
	"liveroom/chat/chattest"
	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestMemoryAudit(t *testing.T) {
	chattest.TestAudit(t, false, func(t *testing.T) chattest.Handles[chat.AuditLog] {
		a := chat.NewMemoryAudit()
		return chattest.Handles[chat.AuditLog]{A: a, B: a}
	})
}

func TestFileAudit(t *testing.T) {
	chattest.TestAudit(t, true, func(t *testing.T) chattest.Handles[chat.AuditLog] {
		dir := t.TempDir()
		open := func() chat.AuditLog { return openFileAudit(t, dir) }
		a := open()
		return chattest.Handles[chat.AuditLog]{A: a, B: a, Reopen: open}
	})
}

// Two RedisAudits on one prefix are two nodes.
func TestRedisAudit(t *testing.T) {
	srv := roomtest.StartRedis(t)
	chattest.TestAudit(t, true, func(t *testing.T) chattest.Handles[chat.AuditLog] {
		p := roomtest.Prefix()
		open := func() chat.AuditLog { return chat.NewRedisState(srv.Client(t), p, 1, 1).Audit() }
		return chattest.Handles[chat.AuditLog]{A: open(), B: open(), Reopen: open, Forget: room.ForgetRedisScope(srv.Client(t), p)}
	})
}

func openFileAudit(t *testing.T, dir string) *chat.FileAudit {
	t.Helper()
	a, err := chat.OpenFileAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
