package media_test

import (
	"testing"
	"time"

	"liveroom/media"
)

// TestTranscodeOpusToAAC: Opus packets (from a real 440 Hz AAC tone sent
// through the AAC → Opus transcoder) come out of the Opus → AAC transcoder
// as AAC access units of 1024 samples, 21.3 ms apart, on the input's PTS
// timeline, across a jump in it.
func TestTranscodeOpusToAAC(t *testing.T) {
	needTranscoder(t)
	asc, aus := aacTone(t, 48000, 3)
	var opus opusOut
	up, err := media.NewAACTranscoder(asc, opus.add)
	if err != nil {
		t.Fatal(err)
	}
	for i, au := range aus {
		if err := up.Write(au, time.Duration(i)*1024*time.Second/48000); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); opus.len() < 140 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = up.Close()

	var aac opusOut // same shape: payload + PTS
	tr, err := media.NewOpusTranscoder(aac.add)
	if err != nil {
		t.Fatal(err)
	}
	base, jump := 5*time.Second, 30*time.Second
	jumpAt := len(opus.pkts) / 2
	for i, p := range opus.pkts {
		pts := base + time.Duration(i)*20*time.Millisecond
		if i >= jumpAt {
			pts += jump
		}
		if err := tr.Write(p, pts); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	inDur := time.Duration(len(opus.pkts)) * 20 * time.Millisecond
	want := int(inDur/(1024*time.Second/48000)) - 10
	for deadline := time.Now().Add(10 * time.Second); aac.len() < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if got := aac.len(); got < want {
		t.Fatalf("got %d AAC units from %d Opus packets, want at least %d", got, len(opus.pkts), want)
	}
	if d := tr.Dropped(); d != 0 {
		t.Errorf("dropped %d", d)
	}
	t.Logf("%d Opus packets in, %d AAC units out, first AAC PTS %v (input from %v)", len(opus.pkts), aac.len(), aac.pts[0], base)
	if first := aac.pts[0]; first < base-50*time.Millisecond || first > base+150*time.Millisecond {
		t.Errorf("first AAC PTS %v, want near %v", first, base)
	}
	jumps := 0
	for i := 1; i < len(aac.pts); i++ {
		d := aac.pts[i] - aac.pts[i-1]
		switch {
		case d > jump/2:
			jumps++
		case d < 15*time.Millisecond || d > 30*time.Millisecond:
			t.Errorf("AAC unit %d: %v after the previous, want about 21.3 ms", i, d)
		}
		if len(aac.pkts[i]) == 0 {
			t.Errorf("AAC unit %d empty", i)
		}
	}
	if jumps != 1 {
		t.Errorf("%d jumps in AAC PTS, want 1 (the input's)", jumps)
	}
}
