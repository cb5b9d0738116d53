package main

import (
	"fmt"
	"testing"
	"time"
)

// TestClusterNodeKillResume: a viewer watches chat on node b; b is killed
// with SIGKILL while chat goes on through node a; the viewer reconnects to
// node c, sends resume with its last seq and epoch, and gets every message
// it missed, in order, with nothing lost inside the history window.
func TestClusterNodeKillResume(t *testing.T) {
	_, nodes := startCluster(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if status, body := adminDo(t, "POST", a.Base+"/api/v1/rooms", map[string]any{"id": "live", "title": "Live"}); status != 201 {
		t.Fatalf("create room: %d %s", status, body)
	}
	sender := dialWS(t, a.Base, "live", mintToken(t, a.Base, "host", "host", "live"))
	if sender.await("welcome", 5*time.Second) == nil {
		t.Fatal("sender: no welcome")
	}
	viewerTok := mintToken(t, a.Base, "viewer", "viewer", "live")
	v := dialWS(t, b.Base, "live", viewerTok)
	welcome := v.await("welcome", 5*time.Second)
	if welcome == nil {
		t.Fatal("viewer on b: no welcome")
	}
	epoch, _ := welcome["epoch"].(string)

	say := func(text string) {
		if err := sender.send(map[string]any{"type": "chat.send", "text": text}); err != nil {
			t.Fatal(err)
		}
	}
	// Before the kill: the viewer sees "before", and keeps its seq.
	say("before")
	m := v.next(5*time.Second, "chat.message")
	if m == nil {
		t.Fatal("viewer on b: no chat before the kill")
	}
	lastSeq := m["seq"].(float64)

	b.Kill()
	var want []string
	for i := range 3 {
		text := fmt.Sprintf("while b was down %d", i)
		say(text)
		want = append(want, text)
		time.Sleep(20 * time.Millisecond) // the host's chat rate limit allows a short burst
	}
	// The sender sees its own messages: they were published.
	for range want {
		if sender.next(5*time.Second, "chat.message") == nil {
			t.Fatal("sender: its messages were not published")
		}
	}

	// The viewer's client reconnects to another node and resumes.
	v2 := dialWS(t, c.Base, "live", viewerTok)
	if v2.await("welcome", 5*time.Second) == nil {
		t.Fatal("viewer on c: no welcome")
	}
	if err := v2.send(map[string]any{"type": "resume", "after_seq": lastSeq, "epoch": epoch, "ref": "r1"}); err != nil {
		t.Fatal(err)
	}
	resumed := v2.await("welcome", 5*time.Second)
	if resumed == nil || resumed["resumed"] != true {
		t.Fatalf("resume on c: got %v, want a welcome with resumed=true", resumed)
	}
	var got []string
	prev := lastSeq
	missed, _ := resumed["missed"].([]any)
	for _, e := range missed {
		ev := e.(map[string]any)
		if seq := ev["seq"].(float64); seq <= prev {
			t.Fatalf("missed events out of order: seq %v after %v", seq, prev)
		} else {
			prev = seq
		}
		if ev["type"] == "chat.message" {
			got = append(got, ev["message"].(map[string]any)["text"].(string))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("missed chat after resume: got %q, want %q", got, want)
	}
}
