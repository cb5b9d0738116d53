package chat_test

import (
	"testing"

	"liveroom/chat"
	"liveroom/chat/chattest"
	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestMemoryState(t *testing.T) {
	chattest.TestState(t, chattest.Kept{}, func(t *testing.T, history, held int) chattest.Handles[chattest.State] {
		s := chat.NewMemoryState(history, held)
		return chattest.Handles[chattest.State]{A: s, B: s}
	})
}

// FileState keeps moderation and ranks across a restart; messages stay in memory.
func TestFileState(t *testing.T) {
	chattest.TestState(t, chattest.Kept{Moderation: true, Ranks: true}, func(t *testing.T, history, held int) chattest.Handles[chattest.State] {
		dir := t.TempDir()
		open := func() chattest.State {
			s, err := chat.OpenFileState(dir, history, held)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s := open()
		return chattest.Handles[chattest.State]{A: s, B: s, Reopen: open}
	})
}

// Two RedisStates on one prefix are two nodes; a restarted node keeps all.
func TestRedisState(t *testing.T) {
	srv := roomtest.StartRedis(t)
	all := chattest.Kept{Moderation: true, Messages: true, Posts: true, Ranks: true}
	chattest.TestState(t, all, func(t *testing.T, history, held int) chattest.Handles[chattest.State] {
		p := roomtest.Prefix()
		open := func() chattest.State { return chat.NewRedisState(srv.Client(t), p, history, held) }
		return chattest.Handles[chattest.State]{A: open(), B: open(), Reopen: open, Forget: room.ForgetRedisScope(srv.Client(t), p)}
	})
}
