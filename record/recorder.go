package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"liveroom/media"
	"liveroom/room"
)

// Media is what the recorder needs from the media server.
type Media interface {
	OpenReader(roomID string, opts media.ReaderOptions) (*media.Reader, error)
	Live(roomID string) bool
}

// Deps are what a Recorder is built from.
type Deps struct {
	Media Media
	Rooms room.Store
	// Notify sends a private event to a room's hosts (Hub.SendRole with
	// RoleHost); scope is the room incarnation's data scope.
	Notify func(ctx context.Context, scope string, ev room.Event) error
	// AAC shares the rooms' Opus → AAC streams with other outputs (HLS);
	// nil = the recorder's own.
	AAC *media.AACStreams
	// Events subscribes to the room events delivered to this node for a
	// scope, from every node (Hub.ObserveRoom, through the bus); nil = only
	// what Observe is told (a hub publish hook: this node's publishes).
	Events func(ctx context.Context, scope string, fn func(room.Event)) (cancel func(), err error)
	// Manifest shares shows across a cluster's nodes (Redis); nil = this
	// node's disk only.
	Manifest Manifest
	// Node is this node's id in the manifest (cluster mode).
	Node string
	Log  *slog.Logger
}

// Recorder records the shows of the rooms whose recording is on, one show
// goroutine per live room, each a reader of the media seam.
type Recorder struct {
	cfg    Config
	media  Media
	rooms  room.Store
	notify func(ctx context.Context, scope string, ev room.Event) error
	log    *slog.Logger
	lib    *Library
	aac    *media.AACStreams
	events func(ctx context.Context, scope string, fn func(room.Event)) (func(), error)
	man    Manifest
	node   string

	live chan string // rooms that went live (OnLive); full = dropped, logged

	mu      sync.Mutex
	shows   map[string]*show // by room id
	byScope map[string]*show
	blocked map[string]bool // stopped early: not restarted until the host goes offline
	wg      sync.WaitGroup
}

// New builds a recorder; Run drives it.
func New(cfg Config, d Deps) (*Recorder, error) {
	cfg.SetDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("record.dir: must be set")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Media == nil || d.Rooms == nil {
		return nil, errors.New("record: Media and Rooms are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Notify == nil {
		d.Notify = func(context.Context, string, room.Event) error { return nil }
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if d.AAC == nil {
		d.AAC = media.NewAACStreams(d.Media.OpenReader)
	}
	r := &Recorder{
		cfg: cfg, media: d.Media, rooms: d.Rooms, notify: d.Notify, log: d.Log.With("component", "record"),
		lib: &Library{dir: cfg.Dir}, aac: d.AAC, events: d.Events, man: d.Manifest, node: d.Node,
		live: make(chan string, 256), shows: map[string]*show{}, byScope: map[string]*show{}, blocked: map[string]bool{},
	}
	if r.man != nil {
		r.lib.onSwept, r.lib.onRecovered = r.manifestSwept, r.manifestRecovered
	}
	return r, nil
}

// manifestSwept: a show past retention leaves the cluster's manifest too
// (every node sweeps its own part by the same rule).
func (r *Recorder) manifestSwept(roomID, showID string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := r.man.Delete(ctx, roomID, showID); err != nil {
		r.log.Warn("swept show left in the manifest", "room", roomID, "show", showID, "err", err)
	}
}

// sweepDeleted removes this node's files of shows deleted cluster-wide
// (by another node's DELETE or retention sweep): their tombstones in the
// manifest.
func (r *Recorder) sweepDeleted() {
	active := r.active()
	var keys []string
	_ = r.lib.eachShow(func(roomID, showID string, _ Meta) {
		if k := roomID + "/" + showID; !active[k] {
			keys = append(keys, k)
		}
	})
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	gone, err := r.man.Deleted(ctx, keys)
	if err != nil {
		r.log.Warn("recordings sweep: tombstones unread", "err", err)
		return
	}
	for k := range gone {
		roomID, showID, _ := strings.Cut(k, "/")
		if err := r.lib.Delete(roomID, showID); err != nil && !errors.Is(err, ErrNoShow) {
			r.log.Warn("deleted show's files left", "room", roomID, "show", showID, "err", err)
			continue
		}
		r.log.Info("deleted show's files removed", "room", roomID, "show", showID)
	}
}

// manifestRecovered closes in the manifest a show this node was recording
// when it crashed, unless its host has continued it on another node.
func (r *Recorder) manifestRecovered(m Meta) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	st, _, err := r.man.Get(ctx, m.Room, m.ID)
	if err != nil || st.EndedAt != nil || st.Node != r.node {
		return
	}
	st.EndedAt, st.Stopped, st.Node = m.EndedAt, m.Stopped, ""
	if err := r.man.Save(ctx, st, nil); err != nil {
		r.log.Warn("show left open in the manifest", "room", m.Room, "show", m.ID, "err", err)
	}
}

// Library is the recorded shows on disk.
func (r *Recorder) Library() *Library { return r.lib }

// OnLive is told that a room's stream went live or offline (the media
// server's live hook, beside the lifecycle's); it never blocks.
func (r *Recorder) OnLive(roomID string, live bool) {
	if !live {
		r.mu.Lock()
		delete(r.blocked, roomID)
		r.mu.Unlock()
		return
	}
	select {
	case r.live <- roomID:
	default:
		r.log.Warn("recorder queue full: show not started", "room", roomID)
	}
}

// Observe is the hub's publish hook: the room events of a show's room
// (commerce, chat) go to its logs. It never blocks.
func (r *Recorder) Observe(scope string, ev room.Event) {
	if r.events != nil {
		return // the bus subscription sees it (and every other node's)
	}
	if !scriptKinds[ev.Type] && !chatKinds[ev.Type] {
		return
	}
	r.mu.Lock()
	s := r.byScope[scope]
	r.mu.Unlock()
	if s != nil {
		s.observe(ev)
	}
}

// Run recovers shows a crash left open, starts shows as rooms go live and
// sweeps old recordings, until ctx ends; then it ends the shows in progress.
func (r *Recorder) Run(ctx context.Context) error {
	if n, err := r.lib.recover(); err != nil {
		r.log.Warn("recover shows", "err", err)
	} else if n > 0 {
		r.log.Info("closed shows left open by a crash", "shows", n)
	}
	sweep := time.NewTicker(r.cfg.SweepEvery)
	defer sweep.Stop()
	r.sweep()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case id := <-r.live:
			r.start(ctx, id)
		case <-sweep.C:
			r.sweep()
		}
	}
	r.wg.Wait()
	return ctx.Err()
}

func (r *Recorder) sweep() {
	if r.man != nil {
		r.sweepDeleted()
	}
	if n, err := r.lib.sweep(r.cfg.RetentionDays, r.cfg.MaxBytes, r.active()); err != nil {
		r.log.Warn("recordings sweep", "err", err)
	} else if n > 0 {
		r.log.Info("recordings swept", "shows", n)
	}
}

// active lists the shows being written (never swept).
func (r *Recorder) active() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]bool{}
	for _, s := range r.shows {
		m[s.meta.Room+"/"+s.meta.ID] = true
	}
	return m
}

// start begins a show for roomID if it records and has none running.
func (r *Recorder) start(ctx context.Context, roomID string) {
	r.mu.Lock()
	busy := r.shows[roomID] != nil || r.blocked[roomID]
	r.mu.Unlock()
	if busy {
		return
	}
	rm, err := r.rooms.Get(ctx, roomID)
	if err != nil {
		return
	}
	if !r.records(rm) {
		return
	}
	if reason := r.overQuota(); reason != "" {
		r.tellStopped(rm.Scope(), roomID, "", reason)
		return
	}
	s, err := r.newShow(rm)
	if err != nil {
		r.log.Warn("show not recorded", "room", roomID, "err", err)
		r.tellStopped(rm.Scope(), roomID, "", r.stopReason(err))
		return
	}
	r.mu.Lock()
	r.shows[roomID], r.byScope[s.meta.Scope] = s, s
	r.mu.Unlock()
	r.log.Info("show recording", "room", roomID, "show", s.meta.ID)
	unsub := func() {}
	if r.events != nil {
		// Every node's pins, sales and chat reach the show through the bus.
		if c, err := r.events(ctx, s.meta.Scope, s.observe); err == nil {
			unsub = c
		} else {
			r.log.Warn("show events not observed", "room", roomID, "show", s.meta.ID, "err", err)
		}
	}
	r.wg.Go(func() {
		stopped := s.run(ctx)
		unsub()
		r.mu.Lock()
		delete(r.shows, roomID)
		delete(r.byScope, s.meta.Scope)
		if stopped != "" {
			r.blocked[roomID] = true
		}
		r.mu.Unlock()
		r.log.Info("show ended", "room", roomID, "show", s.meta.ID, "duration_s", s.meta.DurationS, "bytes", s.meta.Bytes, "stopped", stopped)
		if stopped != "" {
			r.tellStopped(s.meta.Scope, roomID, s.meta.ID, stopped)
		} else if ctx.Err() == nil && !s.hostEnded && !s.moved && r.media.Live(roomID) {
			r.OnLive(roomID, true) // live again as the show ended: a new one
		}
	})
}

func (r *Recorder) records(rm room.Room) bool {
	if rm.Record != nil {
		return *rm.Record
	}
	return r.cfg.Default
}

// newShow opens the show's directory and its reader of the seam.
func (r *Recorder) newShow(rm room.Room) (*show, error) {
	now := time.Now().UTC()
	id := strings.ToLower(now.Format("20060102t150405")) + "-" + room.RandomID(3)
	meta := Meta{ID: id, Room: rm.ID, Scope: rm.Scope(), StartedAt: now}
	var resume *ShowState
	var resumeSegs []SegmentRef
	if r.man != nil {
		// A host who moved here continues the show the cluster has open.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, ok, err := r.man.Current(ctx, rm.ID, rm.Scope())
		if ok {
			_, resumeSegs, err = r.man.Get(ctx, rm.ID, st.ID)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("show manifest: %w", err)
		}
		if ok {
			resume, id = &st, st.ID
			meta = st.Meta
			meta.EndedAt, meta.Stopped = nil, ""
		}
	}
	dir := filepath.Join(r.cfg.Dir, rm.ID, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var src source
	audio := false
	if sub, err := r.aac.Open(rm.ID); err == nil {
		src, audio = sub, true
	} else {
		r.log.Warn("show recorded without audio", "room", rm.ID, "err", err)
		rd, err := r.media.OpenReader(rm.ID, media.ReaderOptions{Queue: 1024})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		src = rd
	}
	s := &show{
		rec: r, dir: dir, src: src, sg: newSegmenter(dir, r.cfg.Segment, audio),
		meta:   meta,
		events: make(chan room.Event, 256), logSize: map[string]int64{}, inits: map[int]string{},
	}
	if resume != nil {
		// Numbering and the timeline go on from where the last node stopped:
		// the next init, the next segment, the first keyframe at EndPTS.
		s.sg.segN, s.sg.initN = resume.SegN, resume.InitN
		s.sg.entries = refsToEntries(resumeSegs)
		s.sg.segStart = resume.EndPTS
		s.pushed, s.prevBytes = len(s.sg.entries), resume.Bytes
		for n, node := range resume.Inits {
			s.inits[n] = node
		}
		r.log.Info("show continued from another node", "room", rm.ID, "show", id, "node", resume.Node, "segments", resume.SegN)
	}
	if err := s.writeMeta(); err != nil {
		src.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// stopReason names why a write error stops a recording.
func (r *Recorder) stopReason(err error) string {
	switch {
	case isDiskFull(err):
		return "disk_full"
	case errors.Is(err, errStop):
		return err.Error()
	}
	r.log.Warn("recording write", "err", err)
	return "write_error"
}

// overQuota says why no more may be written: the disk's free space under
// record.min_free_bytes, or the recordings over record.max_bytes.
func (r *Recorder) overQuota() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(r.cfg.Dir, &st); err == nil && int64(st.Bavail)*int64(st.Bsize) < r.cfg.MinFreeBytes {
		return "disk_full"
	}
	if r.cfg.MaxBytes > 0 && r.lib.totalBytes() >= r.cfg.MaxBytes {
		return "quota"
	}
	return ""
}

// tellStopped tells the room's hosts their show is not (or no longer)
// recorded: record.stopped {reason, show}.
func (r *Recorder) tellStopped(scope, roomID, showID, reason string) {
	r.log.Warn("recording stopped", "room", roomID, "show", showID, "reason", reason)
	ev, err := room.NewEvent("record.stopped", map[string]string{"reason": reason, "show": showID})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.notify(ctx, scope, ev); err != nil {
		r.log.Warn("record.stopped not sent", "room", roomID, "err", err)
	}
}
