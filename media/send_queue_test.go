package media

import "testing"

func TestSendQueueKick(t *testing.T) {
	cases := []struct {
		name   string
		queued int // packets already queued
		kind   kind
		marker bool
		want   bool // writer woken
	}{
		{"video mid-frame waits", 0, kindVideo, false, false},
		{"video frame end wakes", 0, kindVideo, true, true},
		{"audio wakes", 0, kindAudio, false, true},
		{"long burst wakes", kickBurst - 1, kindVideo, false, true},
		{"short burst waits", kickBurst - 2, kindVideo, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newSendQueue(64)
			for range c.queued {
				if !q.push(&packet{kind: kindVideo}) {
					t.Fatal("push failed")
				}
			}
			pk := &packet{kind: c.kind, marker: c.marker}
			if !q.push(pk) {
				t.Fatal("push failed")
			}
			q.kickIfDue(pk)
			got := len(q.wake) == 1
			if got != c.want {
				t.Errorf("woken: got %v, want %v", got, c.want)
			}
		})
	}
}

func TestSendQueueBounded(t *testing.T) {
	q := newSendQueue(2)
	a, b, c := &packet{seq: 1}, &packet{seq: 2}, &packet{seq: 3}
	if !q.push(a) || !q.push(b) {
		t.Fatal("push into a queue with room failed")
	}
	if q.push(c) {
		t.Fatal("push into a full queue: got true, want false")
	}
	q.kick()
	q.kick() // never blocks
	for i, want := range []*packet{a, b, nil} {
		if got := q.pop(); got != want {
			t.Errorf("pop %d: got %v, want %v", i, got, want)
		}
	}
}
