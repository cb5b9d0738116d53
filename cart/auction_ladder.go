package cart

import (
	"encoding/json"
	"fmt"
)

// An auction may bring its own increment ladder (`increments` in
// auction.start): bands of prices below up_to_cents, each with its step;
// from the last band's up_to_cents on, the default ladder (Increment)
// applies. The ladder is bounded: at most MaxLadderBands bands, and at most
// maxLadderRaises steps to climb through all of them, so a custom ladder
// adds a bounded number of steps to the default ladder's (which bounds a
// proxy war, the bids an auction keeps and its idempotency keys).

// Ladder limits.
const (
	MaxLadderBands  = 8
	maxLadderRaises = 2000
)

// LadderBand is one band of an auction's increment ladder.
type LadderBand struct {
	UpToCents int64 `json:"up_to_cents"` // the band holds prices below this
	StepCents int64 `json:"step_cents"`
}

// Ladder is an auction's increment ladder; empty means the default.
type Ladder []LadderBand

// Increment is the smallest raise over a leading amount of price cents.
func (l Ladder) Increment(price int64) int64 {
	for _, b := range l {
		if price < b.UpToCents {
			return b.StepCents
		}
	}
	return Increment(price)
}

// Validate reports a bad ladder as a bad_request on field `increments`.
func (l Ladder) Validate() error {
	if len(l) > MaxLadderBands {
		return fieldErr("increments", "at most %d bands", MaxLadderBands)
	}
	var from, raises int64
	for i, b := range l {
		if b.UpToCents <= from || b.UpToCents > MaxPriceCents {
			return fieldErr("increments", "band %d: up_to_cents must be above the previous band's and at most %d", i+1, int64(MaxPriceCents))
		}
		if b.StepCents < 1 || b.StepCents > MaxPriceCents {
			return fieldErr("increments", "band %d: step_cents must be 1..%d", i+1, int64(MaxPriceCents))
		}
		raises += (b.UpToCents - from + b.StepCents - 1) / b.StepCents
		if raises > maxLadderRaises {
			return fieldErr("increments", "the bands take more than %d steps to climb; use larger steps", maxLadderRaises)
		}
		from = b.UpToCents
	}
	return nil
}

// ladderJSON is the ladder as stored ("" for the default).
func ladderJSON(l Ladder) string {
	if len(l) == 0 {
		return ""
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func parseLadder(s string) (Ladder, error) {
	if s == "" {
		return nil, nil
	}
	var l Ladder
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("cart: auction ladder: %w", err)
	}
	return l, nil
}
