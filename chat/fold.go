package chat

import (
	"strings"
	"unicode"
)

// Folding makes term matching case- and accent-insensitive without a
// Unicode normalization library: letters of Latin-1 and Latin Extended-A
// (and the common Extended-B and Vietnamese ones) map to their base letters,
// combining marks are dropped (so decomposed input folds too), full-width
// ASCII maps to ASCII, and everything else is lower-cased.

// latin1 maps U+00C0–U+00FF; "" = not a letter (× ÷).
var latin1 = [64]string{
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", // C0–CF
	"d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss", // D0–DF
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", // E0–EF
	"d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y", // F0–FF
}

// latinExtA maps U+0100–U+017F: runs of code points sharing a base letter.
var latinExtA = func() [128]string {
	var t [128]string
	i := 0
	for _, run := range []struct {
		n    int
		base string
	}{
		{6, "a"}, {8, "c"}, {4, "d"}, {10, "e"}, {8, "g"}, {4, "h"}, {10, "i"}, {2, "ij"}, {2, "j"},
		{3, "k"}, {10, "l"}, {9, "n"}, {6, "o"}, {2, "oe"}, {6, "r"}, {8, "s"}, {6, "t"}, {12, "u"},
		{2, "w"}, {3, "y"}, {6, "z"}, {1, "s"},
	} {
		for range run.n {
			t[i] = run.base
			i++
		}
	}
	return t
}()

// extra covers letters outside those blocks that chat commonly carries.
var extra = map[rune]string{
	'ƒ': "f", 'Ơ': "o", 'ơ': "o", 'Ư': "u", 'ư': "u", 'Ǎ': "a", 'ǎ': "a", 'Ǐ': "i", 'ǐ': "i",
	'Ǒ': "o", 'ǒ': "o", 'Ǔ': "u", 'ǔ': "u", 'Ș': "s", 'ș': "s", 'Ț': "t", 'ț': "t", 'ẞ': "ss",
}

// foldRune returns the folded form of r and whether r is part of a word.
func foldRune(r rune) (string, bool) {
	switch {
	case r < 0x80:
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return string(r), 'a' <= r && r <= 'z' || '0' <= r && r <= '9'
	case r >= 0xC0 && r <= 0xFF:
		s := latin1[r-0xC0]
		return s, s != ""
	case r >= 0x100 && r <= 0x17F:
		return latinExtA[r-0x100], true
	case r >= 0x300 && r <= 0x36F: // combining diacritical marks
		return "", true
	case r >= 0x1EA0 && r <= 0x1EF9: // Vietnamese: pairs of A…Y with marks
		return vietnamese(r), true
	case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
		return foldRune(r - 0xFF01 + 0x21)
	}
	if s, ok := extra[r]; ok {
		return s, true
	}
	if unicode.Is(unicode.Mn, r) {
		return "", true
	}
	if l := unicode.ToLower(r); l != r {
		return foldRune(l) // e.g. Å (Ångström sign) → å → a
	}
	return string(r), unicode.IsLetter(r) || unicode.IsDigit(r)
}

// vietnamese folds U+1EA0–U+1EF9, laid out as runs of upper/lower pairs.
func vietnamese(r rune) string {
	switch {
	case r <= 0x1EB7:
		return "a"
	case r <= 0x1EC7:
		return "e"
	case r <= 0x1ECB:
		return "i"
	case r <= 0x1EE3:
		return "o"
	case r <= 0x1EF1:
		return "u"
	default:
		return "y"
	}
}

// fold returns s case- and accent-folded, keeping non-word characters.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if f, word := foldRune(r); word {
			b.WriteString(f)
		} else {
			b.WriteRune(r) // separators stay as they are
		}
	}
	return b.String()
}

// words splits s into folded words: runs of letters and digits.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		f, word := foldRune(r)
		if !word {
			flush()
			continue
		}
		cur.WriteString(f)
	}
	flush()
	return out
}
