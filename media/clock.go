package media

import (
	"sync"
	"time"
)

// roomClock is the one timeline of a room (see docs/architecture.md, "The
// room clock"): a PTS is the time since epoch, at wall-clock rate, never
// reset while the room exists on this node. Forwarders map their outgoing
// RTP timestamps onto it; sender reports and access units are stamped from
// it.
type roomClock struct {
	epoch time.Time // monotonic for PTS; its wall reading is PTS 0 in NTP terms

	mu   sync.Mutex
	src  source    // whose clock base below is
	base time.Time // source clock reading at room PTS 0; zero = not known
}

func newRoomClock() *roomClock { return &roomClock{epoch: time.Now()} }

// since is now on the room clock.
func (c *roomClock) since(now time.Time) time.Duration { return now.Sub(c.epoch) }

// wall is the wall-clock time of pts (what sender reports carry as NTP).
func (c *roomClock) wall(pts time.Duration) time.Time { return c.epoch.Round(0).Add(pts) }

// sourceBase returns the base that maps src's clock onto the room clock,
// fixing it (from the pair srcAt ↔ pts) the first time src reports.
func (c *roomClock) sourceBase(src source, srcAt time.Time, pts time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.src != src || c.base.IsZero() {
		c.src, c.base = src, srcAt.Add(-pts)
	}
	return c.base
}

// tsMap maps one forwarder's outgoing RTP timestamps onto the room clock:
// pts(ts) = pts + (ts - ts0) / rate. Immutable once published.
type tsMap struct {
	ts   uint32
	pts  time.Duration
	rate uint32
}

// at is the PTS of ts; ts within ±2^31 ticks of the anchor (the forwarder
// re-anchors long before that).
func (m *tsMap) at(ts uint32) time.Duration {
	if m.rate == 0 {
		return m.pts
	}
	return m.pts + time.Duration(int64(int32(ts-m.ts)))*time.Second/time.Duration(m.rate)
}

// tsAt is the outgoing RTP timestamp at pts (inverse of at).
func (m *tsMap) tsAt(pts time.Duration) uint32 {
	return m.ts + uint32(int64((pts-m.pts)*time.Duration(m.rate)/time.Second))
}

// srcReport is what a source said about its clock for one ingest: input
// RTP timestamp ts was at ntp on the source's clock.
type srcReport struct {
	ntp time.Time
	ts  uint32
}

// at is the source-clock time of input timestamp ts.
func (r srcReport) at(ts uint32, rate uint32) time.Time {
	return r.ntp.Add(time.Duration(int64(int32(ts-r.ts))) * time.Second / time.Duration(rate))
}

// senderReport tells the room what the source's clock says about this
// ingest's timestamps (an RTCP sender report, or an ingest's own PTS). Only
// the first report of an ingest is used: it relates the kinds of one source
// to each other; afterwards the RTP timestamps carry the timing. Safe from
// any goroutine; never blocks on viewers.
func (in *ingest) senderReport(ntp time.Time, rtpTS uint32) {
	in.f.sourceReport(in, srcReport{ntp: ntp, ts: rtpTS})
}

// anchor starts the mapping of a new source's (or codec's) first forwarded
// packet, rewritten to ts and arrived at now: PTS continues at the arrival
// time on the room clock, never before the last PTS. Called under f.mu.
func (f *forwarder) anchor(ts uint32, now time.Time) {
	pts := f.clk.since(now)
	if f.havePTS && pts <= f.lastPTS {
		pts = f.lastPTS + time.Millisecond
	}
	f.setMap(tsMap{ts: ts, pts: pts, rate: f.clockHz})
	if f.in.rep != nil {
		f.applyReport(ts)
	}
}

// applyReport re-anchors the current ingest on its source's clock at
// outgoing timestamp ts (the last forwarded one). Called under f.mu, once
// per ingest (its first report).
func (f *forwarder) applyReport(ts uint32) {
	in := f.in
	srcAt := in.rep.at(ts-f.tsOff, f.clockHz)
	base := f.clk.sourceBase(in.src, srcAt, f.tm.at(ts))
	f.setMap(tsMap{ts: ts, pts: srcAt.Sub(base), rate: f.clockHz})
}

// sourceReport records in's first report and applies it if in is forwarding.
func (f *forwarder) sourceReport(in *ingest, rep srcReport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in != f.in || in.rep != nil || f.clockHz == 0 {
		return
	}
	in.rep = &rep
	if f.started && f.haveLast {
		f.applyReport(f.lastTS)
	}
}

// setMap makes m the current mapping; readers of tmPub (sender reports)
// see it at once.
func (f *forwarder) setMap(m tsMap) {
	f.tm = m
	f.tmPub.Store(&m)
}

// stamp returns the PTS of outgoing timestamp ts and keeps the anchor close
// enough for at's 32-bit difference. Called under f.mu, once per packet.
func (f *forwarder) stamp(ts uint32) time.Duration {
	if d := int32(ts - f.tm.ts); d > 1<<30 || d < -(1<<30) {
		f.setMap(tsMap{ts: ts, pts: f.tm.at(ts), rate: f.tm.rate})
	}
	pts := f.tm.at(ts)
	if !f.havePTS || pts > f.lastPTS {
		f.havePTS, f.lastPTS = true, pts
	}
	return pts
}
