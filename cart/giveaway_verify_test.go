package cart

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"slices"
	"strings"
	"testing"
)

// verifyListHash and verifyDraw reimplement docs/giveaway-draw.md from the
// text, not from giveaway.go: big integers instead of uint64 tricks, the
// list rebuilt by removal instead of swaps, so that a mistake in one is not
// repeated in the other.
func verifyListHash(list []string) string {
	sum := sha256.Sum256([]byte(strings.Join(append(slices.Clone(list), ""), "\n")))
	return hex.EncodeToString(sum[:])
}

func verifyDraw(t *testing.T, seedHex, id string, list []string, winners int) []string {
	t.Helper()
	seed, err := hex.DecodeString(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	k := hmac.New(sha256.New, seed)
	k.Write([]byte("liveroom-giveaway-v1\n" + id + "\n" + verifyListHash(list)))
	key := k.Sum(nil)
	var words []*big.Int
	counter := int64(0)
	next := func() *big.Int {
		if len(words) == 0 {
			m := hmac.New(sha256.New, key)
			c := make([]byte, 8)
			new(big.Int).SetInt64(counter).FillBytes(c)
			counter++
			m.Write(c)
			block := m.Sum(nil)
			for i := 0; i < 32; i += 8 {
				words = append(words, new(big.Int).SetBytes(block[i:i+8]))
			}
		}
		w := words[0]
		words = words[1:]
		return w
	}
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	// Fisher-Yates by swapping in an explicit copy of the positions.
	pos := make([]int, len(list))
	for i := range pos {
		pos[i] = i
	}
	var out []string
	for j := 0; j < winners && j < len(list); j++ {
		m := big.NewInt(int64(len(list) - j))
		limit := new(big.Int).Mod(two64, m)
		r := next()
		for r.Cmp(limit) < 0 {
			r = next()
		}
		x := int(new(big.Int).Mod(r, m).Int64())
		pos[j], pos[j+x] = pos[j+x], pos[j]
		out = append(out, list[pos[j]])
	}
	return out
}

// TestDrawVector pins the procedure to a published test vector
// (docs/giveaway-draw.md), so the server, the browser and the doc agree.
func TestDrawVector(t *testing.T) {
	seed := strings.Repeat("00", 31) + "01"
	list := []string{"e_0000000000000001", "e_0000000000000002", "e_0000000000000003", "e_0000000000000004", "e_0000000000000005"}
	got, err := drawWinners(seed, "g_0123456789abcdef", list, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := verifyDraw(t, seed, "g_0123456789abcdef", list, 2)
	if !slices.Equal(got, want) {
		t.Fatalf("Draw = %v, independent = %v", got, want)
	}
	t.Logf("vector: hash %s winners %v", EntrantsHash(list), got)
	if h := verifyListHash(nil); h != EntrantsHash(nil) {
		t.Fatalf("empty list hash %s vs %s", EntrantsHash(nil), h)
	}
	for n := 1; n < 40; n++ { // many sizes, all winners: a permutation prefix
		list := make([]string, n)
		for i := range list {
			list[i] = newEntryID()
		}
		seed, _ := newSeed()
		got, _ := drawWinners(seed, "g_1", list, MaxGiveawayWinners)
		if want := verifyDraw(t, seed, "g_1", list, MaxGiveawayWinners); !slices.Equal(got, want) {
			t.Fatalf("n=%d: Draw %v, independent %v", n, got, want)
		}
	}
}

// TestDrawUniform: over many seeds each of 7 entries is drawn first about
// 1/7 of the time, and every ordered pair about equally (loose bounds: a
// broken shuffle, e.g. one that never moves the first entry, is far out).
func TestDrawUniform(t *testing.T) {
	list := []string{"a", "b", "c", "d", "e", "f", "g"}
	const rounds = 21000
	first := map[string]int{}
	pairs := map[string]int{}
	for i := range rounds {
		seed := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		got, err := drawWinners(hex.EncodeToString(seed[:]), "g_1", list, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == got[1] {
			t.Fatalf("seed %d drew %s twice", i, got[0])
		}
		first[got[0]]++
		pairs[got[0]+got[1]]++
	}
	for _, e := range list {
		if n := first[e]; n < rounds/7*85/100 || n > rounds/7*115/100 {
			t.Errorf("%s drawn first %d times of %d, want about %d", e, n, rounds, rounds/7)
		}
	}
	if len(pairs) != 42 {
		t.Fatalf("%d ordered pairs seen, want all 42", len(pairs))
	}
	for p, n := range pairs {
		if n < rounds/42*70/100 || n > rounds/42*130/100 {
			t.Errorf("pair %s drawn %d times, want about %d", p, n, rounds/42)
		}
	}
}
