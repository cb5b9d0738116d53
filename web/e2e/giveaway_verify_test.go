package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"liveroom/cart"
)

// TestGiveawayVerifyJS: the browser's draw (giveaway.js, SubtleCrypto under
// node) and the server's (cart.Draw) agree on the documented test vector
// and on many random lists, sizes 0 to 300 with up to 20 winners.
func TestGiveawayVerifyJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node not found on PATH")
	}
	type tcase struct {
		Seed    string   `json:"seed"`
		ID      string   `json:"id"`
		Entries []string `json:"entries"`
		Winners int      `json:"winners"`
	}
	cases := []tcase{{Seed: strings.Repeat("00", 31) + "01", ID: "g_0123456789abcdef", Winners: 2,
		Entries: []string{"e_0000000000000001", "e_0000000000000002", "e_0000000000000003", "e_0000000000000004", "e_0000000000000005"}}}
	for i := range 60 {
		n := (i * 37) % 301
		c := tcase{Seed: fmt.Sprintf("%064x", i*7919+1), ID: fmt.Sprintf("g_%016x", i), Winners: 1 + i%cart.MaxGiveawayWinners, Entries: []string{}}
		for j := range n {
			c.Entries = append(c.Entries, fmt.Sprintf("e_%016x", (i*1_000_003+j*7_777)%(1<<40)))
		}
		cases = append(cases, c)
	}
	in, _ := json.Marshal(cases)
	cmd := exec.Command(node, "giveaway_verify.mjs")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	var got []struct {
		Hash    string   `json:"hash"`
		Winners []string `json:"winners"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("node answered %d results (%v): %s", len(got), err, out)
	}
	if got[0].Hash != "5344cfccd45a5563340682ba4224eca7becc5b0790193332c3b853ae57af36a8" ||
		!slices.Equal(got[0].Winners, []string{"e_0000000000000005", "e_0000000000000002"}) {
		t.Fatalf("test vector in the browser code: %+v; want docs/giveaway-draw.md's", got[0])
	}
	for i, c := range cases {
		idx, err := cart.Draw(c.Seed, c.ID, c.Entries, c.Winners)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{}
		for _, k := range idx {
			want = append(want, c.Entries[k])
		}
		if got[i].Hash != cart.EntrantsHash(c.Entries) || !slices.Equal(got[i].Winners, want) {
			t.Fatalf("case %d (%d entries, %d winners): browser %v, server %v", i, len(c.Entries), c.Winners, got[i].Winners, want)
		}
	}
}
