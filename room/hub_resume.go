package room

import (
	"context"
	"time"
)

// handleResume replays what a reconnecting client missed. The reply is a
// fresh welcome (a reset point: everything after it is live) carrying
// `resumed: true` and the retained events after after_seq in `missed`; if
// the history no longer reaches back that far (or the epoch changed, or the
// missed events would fill half of hub.send_queue_bytes), an `expired`
// error comes first and the welcome has `resumed: false`.
//
// A welcome is the most expensive thing a client can ask for, so resume is
// limited to hub.resume_rate a second per connection (checked before any
// work), and the welcome is queued like any event: it counts against the
// connection's hub.send_queue_bytes, and one that does not fit ends the
// connection as a slow consumer.
func (h *Hub) handleResume(ctx context.Context, req *Request) error {
	c := req.c
	if !c.resumes.allow(time.Now().UnixNano(), h.cfg.ResumeRate, resumeBurst(h.cfg.ResumeRate)) {
		h.m.drops.WithLabelValues("rate_limited").Inc()
		return Errorf(CodeRateLimited, "at most %g resume a second; wait for the welcome", h.cfg.ResumeRate)
	}
	var b struct {
		AfterSeq *uint64 `json:"after_seq"`
		Epoch    string  `json:"epoch"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.AfterSeq == nil {
		return Errorf(CodeBadRequest, "after_seq is required")
	}
	c.hold()
	events, pos, complete, err := h.bus.Since(ctx, req.Room, *b.AfterSeq)
	if err != nil {
		c.release(qitem{}, 0)
		return err
	}
	if b.Epoch != "" && b.Epoch != pos.Epoch {
		complete = false
	}
	why := "the events after after_seq are no longer kept; here is a fresh snapshot"
	if budget := h.cfg.SendQueueBytes / 2; complete && missedBytes(events, budget) > budget {
		complete, why = false, "too much was missed to replay; here is a fresh snapshot"
	}
	extra := map[string]any{"resumed": complete}
	if complete {
		if events == nil {
			events = []Event{}
		}
		extra["missed"] = events
	} else {
		c.pushDirect(prepare(errorEvent(req.Ref, CodeExpired, why)))
	}
	welcome, err := h.buildWelcome(ctx, c, pos, extra)
	if err != nil {
		c.release(qitem{}, 0)
		return err
	}
	welcome.Ref = req.Ref
	c.release(prepare(welcome), pos.Seq)
	return nil
}

// resumeBurst lets a connection send a whole second's resumes at once (at
// least one).
func resumeBurst(rate float64) int {
	return max(1, int(rate))
}

// missedBytes adds up the encoded size of events, stopping once it passes
// limit.
func missedBytes(events []Event, limit int) int {
	n := 0
	var buf []byte
	for _, ev := range events {
		buf = ev.AppendJSON(buf[:0])
		n += len(buf) + 1
		if n > limit {
			break
		}
	}
	return n
}
