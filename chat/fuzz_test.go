package chat_test

import (
	"fmt"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
	"liveroom/room/roomtest"
)

// FuzzChatFrames sends arbitrary frames from a moderator through the real
// hub and chat handlers over loopback. Whatever the frame, the connection
// survives and keeps answering (checked with a probe after each frame).
func FuzzChatFrames(f *testing.F) {
	for _, s := range []string{
		`{"type":"chat.send","text":"hello","ref":"1"}`,
		`{"type":"chat.send","text":"call 555 123 4567"}`,
		`{"type":"chat.send","text":"www.x.com"}`,
		`{"type":"chat.send","text":null}`,
		`{"type":"chat.send","text":"` + "\u202e\u0000" + `"}`,
		`{"type":"like","count":50}`,
		`{"type":"like","count":-1}`,
		`{"type":"mod.delete","message_id":"m1"}`,
		`{"type":"mod.timeout","user_id":"v1","seconds":5}`,
		`{"type":"mod.timeout","user_id":"v1","seconds":1e99}`,
		`{"type":"mod.ban","user_id":"v1"}`,
		`{"type":"mod.unban","user_id":"v1"}`,
		`{"type":"mod.slow","seconds":0}`,
		`{"type":"mod.terms","add":["x"],"remove":["y"]}`,
		`{"type":"mod.terms","add":[1,2]}`,
		`{"type":"mod.approve","message_id":""}`,
		`{"type":"mod.reject","message_id":{}}`,
		`{"type":"resume","after_seq":0}`,
		`{"type":"chat.send"`, `[1,2]`,
	} {
		f.Add([]byte(s))
	}
	cfg := room.DefaultHubConfig()
	cfg.MaxConnsPerIP, cfg.FrameRate, cfg.FrameBurst, cfg.SendQueue, cfg.MaxFrame = 0, 1e6, 1e6, 65536, 1<<20
	cc := chat.DefaultConfig()
	cc.ChatRate, cc.ChatBurst, cc.LikeRate, cc.LikeBurst = 1e6, 1e6, 1e6, 1e6
	s := roomtest.New(f, roomtest.Options{Hub: &cfg, Setup: func(h *room.Hub, s *roomtest.Server) error {
		_, err := chat.New(cc, chat.Deps{Hub: h, Rooms: s.Rooms})
		return err
	}})
	mod := s.Dial(f, "demo", s.Token(f, "fuzz-mod", room.RoleModerator, "demo"))
	n := 0
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 64<<10 {
			t.Skip("above the hard frame limit: a close, by design")
		}
		n++
		mod.SendRaw(t, frame)
		mod.Quiet(t, fmt.Sprint("probe-", n, "-", time.Now().UnixNano()))
	})
}

// FuzzText checks the text pipeline on its own: cleaning removes every
// control character, folding is stable, and the detectors never panic.
func FuzzText(f *testing.F) {
	for _, s := range []string{"Hello", "Ça va? ÉTÉ", "ＤＡＲＮ", "e\u0301", "+1 (555) 123-4567", "$cash_king", "a\u202eb\x00c\n", "Ỹ ơ ș ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean := chat.CleanText(s)
		for _, r := range clean {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("cleanText(%q) kept %U", s, r)
			}
		}
		w := chat.Words(s)
		if again := chat.Words(chat.Fold(s)); fmt.Sprint(again) != fmt.Sprint(w) {
			t.Fatalf("words not stable under folding: %q → %v then %v", s, w, again)
		}
		_ = chat.SellingReason(s)
		_ = chat.HasLink(s)
	})
}
