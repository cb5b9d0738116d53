package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"liveroom/media"
	"liveroom/room"
)

// Meta is a show's record on disk (meta.json), rewritten with each segment.
type Meta struct {
	ID        string     `json:"id"`
	Room      string     `json:"room"`
	Scope     string     `json:"scope"` // the room incarnation it belongs to
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	DurationS float64    `json:"duration_s"`
	Bytes     int64      `json:"bytes"`
	// Stopped says why the recording stopped before the show ended.
	Stopped string `json:"stopped,omitempty"`
}

// Entry is one line of a show's product script or chat log: an event the
// room published, at its position on the show timeline.
type Entry struct {
	T    float64         `json:"t"`  // seconds since the show started, on its timeline
	TS   int64           `json:"ts"` // server time, unix ms
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

const (
	metaName   = "meta.json"
	scriptName = "script.jsonl"
	chatName   = "chat.jsonl"
)

// source is what a show reads: a media.Reader, or an AACReader over one.
type source interface {
	Read(ctx context.Context) (*media.AccessUnit, error)
	RequestKeyframe()
	Close()
}

// show records one room's show: its media (the run goroutine) and the
// room's commerce and chat events (the events goroutine).
type show struct {
	rec  *Recorder
	dir  string
	meta Meta
	src  source
	sg   *segmenter

	events chan room.Event // from the hub's publish hook; full = dropped

	// the media goroutine's
	offset    time.Duration // room PTS - show PTS
	haveStart bool
	resume    bool // the source went away: re-anchor at the next keyframe
	offSince  time.Time
	lastVideo time.Duration // room PTS of the last video unit

	mu       sync.Mutex
	posShow  time.Duration // show time of the last video unit
	posWall  time.Time
	online   bool
	logBytes int64            // script + chat bytes
	logSize  map[string]int64 // per log file
	logErr   error            // why the events goroutine stopped the recording

	hostEnded bool // the room was ended, deleted or re-created
	moved     bool // the host continued the show on another node

	// cluster mode (rec.man set): what the manifest has of this node's part
	pushed    int            // sg.entries already in the manifest
	prevBytes int64          // what the nodes before this one wrote
	inits     map[int]string // init number -> holder node
}

// position is now on the show timeline (for commerce and chat events).
func (s *show) position() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.online || s.posWall.IsZero() {
		return s.posShow
	}
	return s.posShow + min(time.Since(s.posWall), 5*time.Second)
}

var errStop = errors.New("recording stopped")

// run records until the show ends; it returns why the recording stopped
// early ("" when the show simply ended).
func (s *show) run(ctx context.Context) (stopped string) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.logEvents(ctx, cancel) })
	stopped = s.readMedia(ctx)
	cancel()
	wg.Wait()
	if stopped == "" && s.logErr != nil {
		stopped = s.rec.stopReason(s.logErr)
	}
	s.src.Close()
	if s.moved {
		// Another node continues the show: this node's part stays as
		// written, the manifest is theirs now.
		now := time.Now().UTC()
		s.meta.EndedAt, s.meta.Stopped = &now, "moved"
		_ = s.writeLocalMeta()
		return ""
	}
	if stopped == "" {
		if err := s.sg.finish(); err != nil {
			stopped = s.rec.stopReason(err)
		}
	}
	s.meta.Stopped = stopped
	now := time.Now().UTC()
	s.meta.EndedAt = &now
	if stopped != "" {
		// What was written stays playable: close its playlist if the disk
		// lets us (a failure leaves the previous, complete one).
		s.sg.finished = true
		_ = s.sg.writePlaylist()
	}
	_ = s.writeMeta()
	return stopped
}

// readMedia is the media loop; it returns when the show ends.
func (s *show) readMedia(ctx context.Context) string {
	check := time.Now()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		au, err := s.src.Read(rctx)
		cancel()
		if ctx.Err() != nil {
			return "" // the recorder is shutting down: the show ends here
		}
		switch {
		case err == nil:
			if werr := s.write(au); werr != nil {
				return s.rec.stopReason(werr)
			}
		case errors.Is(err, media.ErrNewSource):
			// The host came back before its old session timed out: the
			// show goes on from the new source's keyframe, without the old
			// one's stall or the switch-over in its timeline.
			s.resume = true
			if werr := s.sg.flushAll(); werr != nil {
				return s.rec.stopReason(werr)
			}
		case errors.Is(err, media.ErrOffline):
			if werr := s.offline(); werr != nil {
				return s.rec.stopReason(werr)
			}
		case errors.Is(err, context.DeadlineExceeded):
		default:
			s.rec.log.Info("show source ended", "room", s.meta.Room, "show", s.meta.ID, "err", err)
			return "" // the room is gone on this node
		}
		if time.Since(check) >= s.rec.cfg.checkEvery() {
			check = time.Now()
			if s.ended(ctx) {
				return ""
			}
			if reason := s.rec.overQuota(); reason != "" {
				return reason
			}
		}
	}
}

// ended: the room was ended, deleted or re-created, or stayed offline past
// the grace period.
func (s *show) ended(ctx context.Context) bool {
	s.mu.Lock()
	online := s.online
	s.mu.Unlock()
	if !online && !s.offSince.IsZero() && time.Since(s.offSince) > s.rec.cfg.Grace {
		s.rec.log.Info("show offline past the grace period", "room", s.meta.Room, "show", s.meta.ID)
		return true
	}
	if s.rec.man != nil {
		if st, _, err := s.rec.man.Get(ctx, s.meta.Room, s.meta.ID); err == nil && st.EndedAt == nil && st.Node != s.rec.node {
			s.rec.log.Info("show continued on another node", "room", s.meta.Room, "show", s.meta.ID, "node", st.Node)
			s.moved = true
			return true
		}
	}
	rm, err := s.rec.rooms.Get(ctx, s.meta.Room)
	if errors.Is(err, room.ErrNotFound) {
		return true
	}
	if err == nil && (rm.Status == room.StatusEnded || rm.Scope() != s.meta.Scope) {
		s.hostEnded = true
		return true
	}
	return false
}

// offline: the host went away; the show waits for the next source.
func (s *show) offline() error {
	s.mu.Lock()
	s.online = false
	s.mu.Unlock()
	s.offSince = time.Now()
	s.resume = true
	if err := s.sg.flushAll(); err != nil {
		return err
	}
	return s.writeMeta()
}

// write takes one access unit from the seam.
func (s *show) write(au *media.AccessUnit) error {
	if au.Video {
		if au.Codec != "H264" {
			return fmt.Errorf("%w: the room's video is %s (recording needs H264)", errStop, au.Codec)
		}
		if !s.haveStart || s.resume {
			if !au.Key {
				return nil
			}
			// Re-anchor so the show timeline has no gap at a reconnect.
			s.offset = au.PTS - s.sg.end()
			s.haveStart, s.resume = true, false
		}
		pts := au.PTS - s.offset
		s.lastVideo = au.PTS
		s.mu.Lock()
		s.online, s.posShow, s.posWall = true, pts, time.Now()
		s.mu.Unlock()
		segs := s.sg.segN
		if err := s.sg.videoAU(au, pts); err != nil {
			return err
		}
		if s.sg.keyframeDue(pts) {
			s.src.RequestKeyframe() // throttled by the SFU
		}
		if err := s.sg.maybeFlush(pts); err != nil {
			return err
		}
		if s.sg.segN != segs {
			return s.writeMeta()
		}
		return nil
	}
	if au.Codec != "AAC" || !s.haveStart || s.resume {
		return nil
	}
	s.sg.audioAU(au.Frame, au.PTS-s.offset)
	segs := s.sg.segN
	if err := s.sg.maybeFlush(s.lastVideo - s.offset); err != nil {
		return err
	}
	if s.sg.segN != segs {
		return s.writeMeta()
	}
	return nil
}

func (s *show) writeMeta() error {
	if err := s.writeLocalMeta(); err != nil {
		return err
	}
	s.saveManifest()
	return nil
}

func (s *show) writeLocalMeta() error {
	s.meta.DurationS = s.sg.duration().Seconds()
	s.mu.Lock()
	s.meta.Bytes = s.sg.bytes + s.logBytes
	s.mu.Unlock()
	b, err := json.Marshal(s.meta)
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(s.dir, metaName), b)
}

// saveManifest tells the cluster's manifest of the segments written since
// the last save and of where the timeline ends. A Redis error is logged:
// the recording goes on, on disk (the next save carries the segments).
func (s *show) saveManifest() {
	if s.rec.man == nil {
		return
	}
	if s.sg.initN > 0 && s.inits[s.sg.initN] == "" {
		s.inits[s.sg.initN] = s.rec.node
	}
	var segs []SegmentRef
	for _, e := range s.sg.entries[s.pushed:] {
		segs = append(segs, SegmentRef{Node: s.rec.node, Name: e.name, Init: e.init, Dur: e.dur, Start: e.start})
	}
	st := ShowState{Meta: s.meta, Node: s.rec.node, SegN: s.sg.segN, InitN: s.sg.initN, EndPTS: s.sg.duration(), Inits: s.inits}
	st.Bytes += s.prevBytes // the show's size across its nodes
	if s.meta.EndedAt != nil {
		st.Node = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.rec.man.Save(ctx, st, segs); err != nil {
		s.rec.log.Warn("show manifest not saved", "room", s.meta.Room, "show", s.meta.ID, "err", err)
		return
	}
	s.pushed = len(s.sg.entries)
}

// observe is the hub hook's path into the show: never blocks.
func (s *show) observe(ev room.Event) {
	select {
	case s.events <- ev:
	default:
		s.rec.log.Warn("show event dropped", "room", s.meta.Room, "show", s.meta.ID, "type", ev.Type)
	}
}

// scriptKinds are the commerce events of the product script; chatKinds
// those of the chat log (messages, and the moderation that hides them).
var (
	scriptKinds = map[string]bool{"product.pinned": true, "product.unpinned": true, "product.updated": true,
		"sale.started": true, "sale.ended": true, "sale.stock": true, "product.price": true}
	chatKinds = map[string]bool{"chat.message": true, "chat.deleted": true, "user.banned": true, "user.unbanned": true}
)

// logEvents appends the room's commerce and chat events to the show's
// logs until ctx ends; a write error stops the recording (cancel).
func (s *show) logEvents(ctx context.Context, cancel context.CancelFunc) {
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	for {
		var ev room.Event
		select {
		case <-ctx.Done():
			return
		case ev = <-s.events:
		}
		name := scriptName
		switch {
		case scriptKinds[ev.Type]:
		case chatKinds[ev.Type]:
			name = chatName
		default:
			continue
		}
		line, err := json.Marshal(Entry{T: s.position().Seconds(), TS: ev.TS, Type: ev.Type, Data: ev.Body})
		if err != nil {
			continue
		}
		line = append(line, '\n')
		// Each log has its own cap, so a chat flood cannot crowd out the
		// product script.
		s.mu.Lock()
		full := s.logSize[name]+int64(len(line)) > s.rec.cfg.MaxLogBytes
		if !full {
			s.logSize[name] += int64(len(line))
			s.logBytes += int64(len(line))
		}
		s.mu.Unlock()
		if full {
			continue // the cap on what a room's chat can make the server keep
		}
		f := files[name]
		if f == nil {
			if f, err = os.OpenFile(filepath.Join(s.dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
				s.logErr = err
				cancel()
				return
			}
			files[name] = f
		}
		if _, err := f.Write(line); err != nil {
			s.logErr = err
			cancel()
			return
		}
		if s.rec.man != nil {
			// The show's logs may span nodes: the manifest has them all.
			if err := s.rec.man.AppendLog(ctx, s.meta.Room, s.meta.ID, name, line[:len(line)-1]); err != nil {
				s.rec.log.Warn("show log not in the manifest", "room", s.meta.Room, "show", s.meta.ID, "err", err)
			}
		}
	}
}

// isDiskFull reports whether err is the disk being full or over quota.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
