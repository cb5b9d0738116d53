package cart

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"liveroom/room"
)

// Giveaways: a host starts one with a prize, an entry window, an entry rule
// and a number of winners; viewers enter once each and get a pseudonymous
// entry id; when the window closes the ordered entry list is fixed, and the
// winners are drawn from a seed committed to at the start and the hash of
// that list (Draw; docs/giveaway-draw.md is the specification).

// Bounds on what a host may ask for.
const (
	MinGiveawayEntryS   = 1
	MaxGiveawayEntryS   = 300 // five minutes: "a few minutes"
	MaxGiveawayWinners  = 20
	MaxGiveawayEntrants = 100_000 // default cap on entries of one giveaway
	maxPrizeText        = 200
	// DrawProcedure names the procedure of Draw (docs/giveaway-draw.md).
	DrawProcedure = "liveroom-giveaway-v1"
)

var entryPattern = regexp.MustCompile(`^e_[0-9a-f]{16}$`)

// The codes only giveaways fail with (the others are in errors.go).
const (
	CodeGiveawayClosed Code = "giveaway_closed" // entry is over
)

// GiveawayRule says who may enter.
type GiveawayRule string

const (
	RuleSignedIn GiveawayRule = "signed_in" // anyone signed in (the default)
	RuleBought   GiveawayRule = "bought"    // has an order in this room within cart.key_retention
	RuleChatted  GiveawayRule = "chatted"   // has posted a chat message in this room (kept for a day)
)

// Prize is a product of the room's catalog (SKU) or a text, exactly one.
type Prize struct {
	SKU  string `json:"sku,omitempty"`
	Text string `json:"text,omitempty"`
}

// GiveawayParams is what a host sends in `giveaway.start`.
type GiveawayParams struct {
	Prize   Prize        `json:"prize"`
	EntryS  int          `json:"entry_s"`
	Rule    GiveawayRule `json:"rule"`    // "" = signed_in
	Winners int          `json:"winners"` // 0 = 1
	Host    string       `json:"-"`       // who starts it (may not enter)
}

// normalize fills the defaults and reports the first invalid field.
func (p *GiveawayParams) normalize() error {
	if p.Rule == "" {
		p.Rule = RuleSignedIn
	}
	if p.Winners == 0 {
		p.Winners = 1
	}
	switch {
	case p.Prize.SKU == "" && strings.TrimSpace(p.Prize.Text) == "":
		return fieldErr("prize", "give a sku of the room's catalog or a text")
	case p.Prize.SKU != "" && p.Prize.Text != "":
		return fieldErr("prize", "give a sku or a text, not both")
	case p.Prize.SKU != "" && !skuPattern.MatchString(p.Prize.SKU):
		return fieldErr("prize", "sku is not a product sku")
	case p.Prize.Text != "" && (utf8.RuneCountInString(p.Prize.Text) > maxPrizeText || !utf8.ValidString(p.Prize.Text) || hasControl(p.Prize.Text)):
		return fieldErr("prize", "text must be 1-%d characters of printable UTF-8", maxPrizeText)
	}
	if p.EntryS < MinGiveawayEntryS || p.EntryS > MaxGiveawayEntryS {
		return fieldErr("entry_s", "must be %d..%d", MinGiveawayEntryS, MaxGiveawayEntryS)
	}
	switch p.Rule {
	case RuleSignedIn, RuleBought, RuleChatted:
	default:
		return fieldErr("rule", "must be signed_in, bought or chatted")
	}
	if p.Winners < 1 || p.Winners > MaxGiveawayWinners {
		return fieldErr("winners", "must be 1..%d", MaxGiveawayWinners)
	}
	return validUser(p.Host)
}

// GiveawayState is where a giveaway is: open for entries, closed (the list
// is fixed, the draw not yet published) or ended.
type GiveawayState string

const (
	GiveawayOpen   GiveawayState = "open"
	GiveawayClosed GiveawayState = "closed"
	GiveawayEnded  GiveawayState = "ended"
)

// Giveaway is one giveaway as anyone may see it: the seed is empty until it
// has ended.
type Giveaway struct {
	ID         string        `json:"giveaway_id"`
	Prize      Prize         `json:"prize"`
	Rule       GiveawayRule  `json:"rule"`
	Winners    int           `json:"winners"`
	Commitment string        `json:"commitment"`
	StartedAt  time.Time     `json:"started_at"`
	EndsAt     time.Time     `json:"ends_at"`
	State      GiveawayState `json:"state"`
	Entrants   int           `json:"entrants"`
	// Set once closed: the hash of the ordered entry list.
	EntrantsHash string `json:"entrants_hash,omitempty"`
	// Set once ended.
	Seed   string   `json:"seed,omitempty"`
	Result []Winner `json:"result,omitempty"`
	Host   string   `json:"-"`
}

// Winner is one drawn entry. User and OrderID are private: the winner's
// own `giveaway.won` carries the order.
type Winner struct {
	Entry   string `json:"entry"`
	Name    string `json:"name"`
	User    string `json:"-"`
	OrderID string `json:"-"`
}

// Entrant is who enters.
type Entrant struct {
	User string
	Name string
}

// EnterResult is what EnterGiveaway did.
type EnterResult struct {
	Entry    string
	Replayed bool // the user had entered already: the same entry
	Entrants int
}

// EndedGiveaway is a giveaway that a call of EndDue ended, with its
// winners' users and orders (Orders in draw order, empty for a text prize).
// Replay marks one that ended earlier and whose announcement lapsed (the
// node that ended it did not confirm MarkAnnounced in time).
type EndedGiveaway struct {
	Room     string
	Giveaway Giveaway
	Orders   []Order
	Replay   bool
}

// announceLease is how long the node that ended (or claimed) a giveaway has
// to publish `giveaway.ended` and call MarkAnnounced before any node's
// EndDue returns it again.
const announceLease = 10 * time.Second

// GiveawayStore keeps giveaways. LocalGiveaways serves one node,
// RedisGiveaways a cluster; runGiveawayConformance holds both to the same
// answers. Each store has one clock (the local process's, or Redis TIME),
// so that entry closes at the same instant for every node.
type GiveawayStore interface {
	// StartGiveaway starts one in room; a product prize holds Winners units
	// of its stock. One giveaway per room may be open or closed at a time.
	StartGiveaway(ctx context.Context, room string, p GiveawayParams) (Giveaway, error)
	// EnterGiveaway enters who once; a repeat returns the same entry.
	EnterGiveaway(ctx context.Context, room, id string, who Entrant) (EnterResult, error)
	// Giveaway is the public view (seed only once ended).
	Giveaway(ctx context.Context, room, id string) (Giveaway, error)
	// GiveawayEntries is the ordered entry list, once closed (nil before).
	GiveawayEntries(ctx context.Context, room, id string) ([]string, error)
	// RunningGiveaway is the room's open or closed giveaway, if any.
	RunningGiveaway(ctx context.Context, room string) (Giveaway, bool, error)
	// EntryOf is user's entry in the giveaway ("" if they have none).
	EntryOf(ctx context.Context, room, id, user string) (string, error)
	// EndDue closes every giveaway whose window is over and ends every
	// closed one: it draws, creates the prize orders and gives unused units
	// back. Whichever node calls it, each giveaway ends exactly once and is
	// reported by the one call that ended it. It also returns, as Replay,
	// ended giveaways not marked announced within announceLease of their
	// end (or of their last such return), each to one caller per lease.
	EndDue(ctx context.Context) ([]EndedGiveaway, error)
	// MarkAnnounced records that `giveaway.ended` of the giveaway was
	// published, so that EndDue stops returning it.
	MarkAnnounced(ctx context.Context, room, id string) error
	// NoteChat records that user posted in room (for RuleChatted).
	NoteChat(ctx context.Context, room, user string) error
}

// GiveawayOptions tune a GiveawayStore.
type GiveawayOptions struct {
	// MaxEntrants caps one giveaway's entries (default MaxGiveawayEntrants).
	MaxEntrants int
	// Now replaces the store's clock (tests); nil = time.Now locally,
	// Redis TIME on Redis.
	Now func() time.Time
}

func (o *GiveawayOptions) setDefaults() {
	if o.MaxEntrants <= 0 {
		o.MaxEntrants = MaxGiveawayEntrants
	}
}

// maxChatters caps the users kept per room for RuleChatted.
const maxChatters = 100_000

// chatterTTL is how long a chatter is remembered (Redis key TTL).
const chatterTTL = 24 * time.Hour

// ---- the draw (docs/giveaway-draw.md is the specification) ----

// newSeed returns a fresh secret seed and its commitment, both lowercase hex.
func newSeed() (seed, commitment string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(b[:]), hex.EncodeToString(sum[:])
}

func newEntryID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "e_" + hex.EncodeToString(b[:])
}

// EntrantsHash is the lowercase hex SHA-256 of the entry ids, each followed
// by a line feed, in list order.
func EntrantsHash(entries []string) string {
	h := sha256.New()
	for _, e := range entries {
		h.Write([]byte(e))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Draw picks min(winners, len(entries)) distinct indexes of entries, in
// draw order, from the seed (hex) and the list: a partial Fisher-Yates
// shuffle driven by HMAC-SHA256 in counter mode with unbiased rejection.
func Draw(seedHex, giveawayID string, entries []string, winners int) ([]int, error) {
	seed, err := hex.DecodeString(seedHex)
	if err != nil || len(seed) != 32 {
		return nil, fmt.Errorf("giveaway: seed must be 64 hex digits")
	}
	mac := hmac.New(sha256.New, seed)
	mac.Write([]byte(DrawProcedure + "\n" + giveawayID + "\n" + EntrantsHash(entries)))
	key := mac.Sum(nil)
	stream := drawStream{mac: hmac.New(sha256.New, key)}

	n := len(entries)
	w := min(winners, n)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	out := make([]int, w)
	for j := range w {
		m := uint64(n - j)
		limit := -m % m // 2^64 mod m: values below it would bias the result
		var r uint64
		for {
			r = stream.next()
			if r >= limit {
				break
			}
		}
		k := j + int(r%m)
		idx[j], idx[k] = idx[k], idx[j]
		out[j] = idx[j]
	}
	return out, nil
}

// drawStream yields 64-bit words: block i = HMAC-SHA256(key, uint64be(i)),
// read as four big-endian uint64 in order.
type drawStream struct {
	mac   hash.Hash
	ctr   uint64
	block []byte
}

func (d *drawStream) next() uint64 {
	if len(d.block) == 0 {
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], d.ctr)
		d.ctr++
		d.mac.Reset()
		d.mac.Write(c[:])
		d.block = d.mac.Sum(nil)
	}
	v := binary.BigEndian.Uint64(d.block[:8])
	d.block = d.block[8:]
	return v
}

// drawWinners runs Draw and returns the winning entry ids in draw order.
func drawWinners(seed, id string, entries []string, winners int) ([]string, error) {
	idx, err := Draw(seed, id, entries, winners)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(idx))
	for i, k := range idx {
		out[i] = entries[k]
	}
	return out, nil
}

// prizeOrder is the 0-price order of one unit of a product prize: paid at
// once, stored with its webhook delivery like a checkout's. Its key names
// the giveaway and the winner's place in the draw.
func prizeOrder(scope string, g Giveaway, w Winner, place int, currency string, now time.Time) Order {
	roomID, inc := room.SplitScope(scope)
	o := Order{
		ID: newOrderID(now), Room: roomID, Incarnation: inc, User: w.User, Currency: currency,
		Items:     []OrderItem{{ReservationID: g.ID, SKU: g.Prize.SKU, Qty: 1, PriceCents: 0}},
		Key:       fmt.Sprintf("giveaway:%s:%d", g.ID, place),
		CreatedAt: now,
	}
	startLife(&o, 0, now) // nothing to pay: paid at once (order_life.go)
	return o
}
