package chat

import (
	"regexp"
	"strings"
)

// phraseSet matches phrases (sequences of folded words) on word boundaries:
// "ass" does not match "class", "dm me" matches "DM   me!!".
type phraseSet struct {
	byFirst map[string][][]string
}

func newPhraseSet(phrases []string) *phraseSet {
	p := &phraseSet{byFirst: map[string][][]string{}}
	for _, ph := range phrases {
		if w := words(ph); len(w) > 0 {
			p.byFirst[w[0]] = append(p.byFirst[w[0]], w)
		}
	}
	return p
}

// match returns the first phrase found in ws (as folded words), or "".
func (p *phraseSet) match(ws []string) string {
	if p == nil || len(p.byFirst) == 0 {
		return ""
	}
	for i, w := range ws {
		for _, ph := range p.byFirst[w] {
			if i+len(ph) > len(ws) {
				continue
			}
			ok := true
			for j := 1; j < len(ph); j++ {
				if ws[i+j] != ph[j] {
					ok = false
					break
				}
			}
			if ok {
				return strings.Join(ph, " ")
			}
		}
	}
	return ""
}

// linkPattern finds URLs and bare domains in folded text.
var linkPattern = regexp.MustCompile(`(?:https?://|www\.)\S|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|co|me|ly|gg|tv|app|dev|shop|store|xyz|info|biz|link|site|online|live|click|top|us|uk|de|fr|es|it|nl|ru|cn|in|br|au|ca|jp)\b`)

// hasLink reports a URL or domain; e-mail addresses are left to the review
// queue (sellingReason), which is where they belong.
func hasLink(folded string) bool {
	if emailPattern.MatchString(folded) {
		folded = emailPattern.ReplaceAllString(folded, " ")
	}
	return linkPattern.MatchString(folded)
}

var (
	emailPattern   = regexp.MustCompile(`[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}`)
	cashtagPattern = regexp.MustCompile(`(?:^|[^a-z0-9])\$[a-z][a-z0-9_]{2,}`)
	payments       = newPhraseSet([]string{
		"venmo", "paypal", "pay pal", "cashapp", "cash app", "zelle", "revolut", "bizum", "western union",
		"moneygram", "wise transfer", "gcash",
	})
	contactPhrases = newPhraseSet([]string{
		"dm me", "pm me", "dm for", "pm for", "message me", "msg me", "text me", "inbox me", "email me",
		"call me", "contact me", "hit me up", "whatsapp", "telegram", "wechat", "signal me", "dms open",
		"cheaper outside", "outside the app", "off platform",
	})
)

// sellingReason says why text looks like an attempt to take a sale off the
// platform, or "" if it does not.
func sellingReason(folded string, ws []string) string {
	if hasPhone(folded) {
		return "phone number"
	}
	if emailPattern.MatchString(folded) {
		return "email address"
	}
	if cashtagPattern.MatchString(folded) || payments.match(ws) != "" {
		return "payment handle"
	}
	if contactPhrases.match(ws) != "" {
		return "off-platform contact"
	}
	return ""
}

// hasPhone looks for 7 or more digits written as one number, allowing the
// usual separators between them: "+1 (555) 123-4567", "555.123.4567".
// Prices ("$1,299.99") and quantities stay below the threshold.
func hasPhone(s string) bool {
	digits, seps := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			seps = 0
			if digits >= 7 {
				return true
			}
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '+' || c == '/':
			seps++
			if seps > 2 {
				digits, seps = 0, 0
			}
		default:
			digits, seps = 0, 0
		}
	}
	return false
}
