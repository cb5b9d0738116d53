package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key layout of the Redis bus, per room (one hash slot: {room:ID}):
//
//	<prefix>{room:ID}:bus:seq    string: the room's last seq (INCR)
//	<prefix>{room:ID}:bus:epoch  string: changes when seq restarts from 0
//	<prefix>{room:ID}:bus:run    string: run_id of the Redis process the
//	                             epoch was last used under
//	<prefix>{room:ID}:bus:log    stream: the last `history` non-transient
//	                             events, entry id = <seq>-1, field m = message
//	<prefix>{room:ID}:bus:floor  string: seq of the newest trimmed entry
//	<prefix>{room:ID}:bus:pres   hash: node -> "<conns> <expires unix ms>"
//	<prefix>{room:ID}:bus:ctr    hash: counter -> value (likes)
//	<prefix>{room:ID}:bus        pub/sub channel of the room
//
// A room event travels as "E<seq> <ts> <epoch> <type>\n<body JSON>", built
// by the publish script, so seq, history and delivery are one atomic step and
// the body is never re-encoded. A targeted delivery is "T" + JSON.

// RedisBusConfig tunes the Redis bus.
type RedisBusConfig struct {
	Prefix      string        // key prefix; default "lr:"
	History     int           // events kept per room for resume
	PresenceTTL time.Duration // a node's presence report counts this long; default 10s
	CheckEvery  time.Duration // how often subscribed rooms are checked for missed events; default 1s
	Log         *slog.Logger
}

// RedisBus is the cluster Bus. It holds one pub/sub connection per node,
// subscribed to the rooms that have local clients. Call Close to stop it.
type RedisBus struct {
	rdb  redis.UniversalClient
	pipe *RedisPipeline // scripts and PUBLISH, auto-pipelined with the node's other calls
	cfg  RedisBusConfig
	id   string // this bus instance, to recognise its own targeted deliveries
	self string // the start of this bus's own targeted deliveries on the wire

	mu      sync.Mutex
	rooms   map[string]*redisRoom
	ps      *redis.PubSub
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
	waiters map[string][]chan struct{} // channel -> Subscribe calls waiting for the confirmation
}

var _ Bus = (*RedisBus)(nil)

var errUnexpectedReply = errors.New("unexpected reply from redis")

// redisRoom is a room this node is subscribed to.
type redisRoom struct {
	id string

	mu      sync.Mutex // serializes delivery: one goroutine at a time, seq order
	subs    []*memSub
	ready   bool     // the starting seq is known
	pending []string // messages received before ready
	epoch   string
	last    uint64 // last seq delivered (or known to be transient/missed)
	seen    uint64 // seq observed by the previous check, to let pub/sub catch up first
}

// NewRedisBus returns a Bus over rdb. Closing the bus does not close rdb.
func NewRedisBus(rdb redis.UniversalClient, cfg RedisBusConfig) *RedisBus {
	if cfg.Prefix == "" {
		cfg.Prefix = "lr:"
	}
	if cfg.History < 1 {
		cfg.History = 1
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 10 * time.Second
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	id := RandomID(8)
	return &RedisBus{rdb: rdb, pipe: NewRedisPipeline(rdb), cfg: cfg, id: id, self: `T{"n":"` + id + `"`,
		rooms: map[string]*redisRoom{}, waiters: map[string][]chan struct{}{}}
}

func (b *RedisBus) key(roomID, name string) string {
	return b.cfg.Prefix + "{room:" + roomID + "}:bus:" + name
}

func (b *RedisBus) channel(roomID string) string { return b.cfg.Prefix + "{room:" + roomID + "}:bus" }

func (b *RedisBus) roomOf(channel string) (string, bool) {
	s, ok := strings.CutPrefix(channel, b.cfg.Prefix+"{room:")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, "}:bus")
}

func (b *RedisBus) keys(roomID string) []string {
	return []string{b.key(roomID, "seq"), b.key(roomID, "epoch"), b.key(roomID, "log"), b.key(roomID, "floor"), b.key(roomID, "run")}
}

func (b *RedisBus) Publish(ctx context.Context, roomID string, ev Event) (Event, error) {
	if roomID == "" {
		return Event{}, errors.New("bus: empty room id")
	}
	if !validKind(ev.Type) {
		return Event{}, fmt.Errorf("bus: bad event kind %q", ev.Type)
	}
	tr := "0"
	if ev.Transient {
		tr = "1"
	}
	v, err := luaPublish.Run(ctx, b.pipe, b.keys(roomID), RandomID(4), b.channel(roomID), ev.Type, string(ev.Body), tr, b.cfg.History).Slice()
	if err != nil {
		return Event{}, fmt.Errorf("bus: publish: %w", err)
	}
	if len(v) != 2 {
		return Event{}, fmt.Errorf("bus: publish: %w", errUnexpectedReply)
	}
	seq, _ := v[0].(int64)
	ts, _ := v[1].(int64)
	ev.Seq, ev.TS, ev.Ref = uint64(seq), ts, ""
	return ev, nil
}

// envelope is a targeted delivery on the wire. Node comes first, so a
// node tells its own deliveries (which Send handed over already) from the
// start of the message, without decoding it.
type envelope struct {
	Node    string          `json:"n,omitempty"` // the sending bus
	Type    string          `json:"t"`
	Body    json.RawMessage `json:"b,omitempty"`
	Ref     string          `json:"r,omitempty"`
	UserID  string          `json:"u,omitempty"`
	MinRole Role            `json:"m,omitempty"`
	Close   string          `json:"c,omitempty"`
}

// Send delivers a targeted event to this node's subscribers at once and
// publishes it for the other nodes. A request's answer (a buyer's `cart`)
// thus reaches the connection that asked even while the node's pub/sub
// connection is still reconnecting after a Redis restart, when a published
// message would miss it.
func (b *RedisBus) Send(ctx context.Context, roomID string, d Delivery) error {
	d.Event.Seq, d.Event.TS = 0, 0
	msg, err := b.appendEnvelope(make([]byte, 0, 64+len(d.Event.Body)), d)
	if err != nil {
		return fmt.Errorf("bus: send: %w", err)
	}
	local := 0
	if r := b.lookupRoom(roomID); r != nil {
		r.mu.Lock()
		for _, s := range r.subs {
			s.h(d)
		}
		local = len(r.subs)
		r.mu.Unlock()
	}
	if err := b.pipe.Publish(ctx, b.channel(roomID), msg); err != nil {
		if local > 0 {
			// Delivered here (where the request that caused it came from,
			// as a rule); the other nodes' connections miss it. Reporting
			// a failure would answer the request twice.
			b.cfg.Log.Warn("bus: targeted event reached this node only", "room", roomID, "type", d.Event.Type, "err", err)
			return nil
		}
		return fmt.Errorf("bus: send: %w", err)
	}
	return nil
}

// appendEnvelope appends "T" and d's envelope as JSON that decodes to what
// json.Marshal of envelope gave (Node first; a `cart` answer per
// reservation made the reflection and the compaction of the body a visible
// share of the hot path). The body must be valid JSON, as json.Marshal
// requires.
func (b *RedisBus) appendEnvelope(buf []byte, d Delivery) ([]byte, error) {
	body := d.Event.Body
	if len(body) > 0 && !json.Valid(body) {
		return nil, errors.New("bus: event body is not valid JSON")
	}
	buf = append(buf, b.self...) // T{"n":"<id>"
	buf = append(buf, `,"t":`...)
	buf = appendEnvString(buf, d.Event.Type)
	if len(body) > 0 {
		buf = append(buf, `,"b":`...)
		buf = append(buf, body...)
	}
	for _, f := range [...]struct{ k, v string }{{`,"r":`, d.Event.Ref}, {`,"u":`, d.UserID}} {
		if f.v != "" {
			buf = append(buf, f.k...)
			buf = appendEnvString(buf, f.v)
		}
	}
	if d.MinRole != 0 {
		buf = append(buf, `,"m":`...)
		buf = strconv.AppendInt(buf, int64(d.MinRole), 10)
	}
	if d.Close != "" {
		buf = append(buf, `,"c":`...)
		buf = appendEnvString(buf, d.Close)
	}
	return append(buf, '}'), nil
}

// appendEnvString appends s as a JSON string: printable ASCII as is,
// anything else through encoding/json (appendJSONString).
func appendEnvString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return appendJSONString(buf, s)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

func (b *RedisBus) lookupRoom(roomID string) *redisRoom {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rooms[roomID]
}

// parseEvent decodes "E<seq> <ts> <epoch> <type>\n<body>".
func parseEvent(msg string) (Event, string, error) {
	head, body, ok := strings.Cut(msg, "\n")
	f := strings.Split(strings.TrimPrefix(head, "E"), " ")
	if !ok || len(f) != 4 || !strings.HasPrefix(head, "E") {
		return Event{}, "", errors.New("bus: malformed event")
	}
	seq, err1 := strconv.ParseUint(f[0], 10, 64)
	ts, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Event{}, "", errors.New("bus: malformed event header")
	}
	ev := Event{Type: f[3], Seq: seq, TS: ts}
	if body != "" {
		ev.Body = json.RawMessage(body)
	}
	return ev, f[2], nil
}

func (b *RedisBus) Subscribe(ctx context.Context, roomID string, h func(Delivery)) (func(), error) {
	s := &memSub{h: h}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("bus: closed")
	}
	r := b.rooms[roomID]
	if r != nil {
		b.mu.Unlock()
		r.mu.Lock()
		r.subs = append(r.subs, s)
		r.mu.Unlock()
		return b.canceler(r, s), nil
	}
	r = &redisRoom{id: roomID, subs: []*memSub{s}}
	b.rooms[roomID] = r
	b.startLocked()
	ch := b.channel(roomID)
	wait := make(chan struct{}, 1)
	b.waiters[ch] = append(b.waiters[ch], wait)
	ps := b.ps
	b.mu.Unlock()
	// Messages that arrive before the room's starting seq is known are
	// kept in r.pending and sorted out below.
	err := ps.Subscribe(ctx, ch)
	if err == nil {
		select {
		case <-wait:
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(5 * time.Second):
			err = errors.New("no subscription confirmation")
		}
	}
	var pos Position
	if err == nil {
		pos, err = b.Position(ctx, roomID)
	}
	cancel := b.canceler(r, s)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bus: subscribe %s: %w", roomID, err)
	}
	r.mu.Lock()
	r.epoch, r.last, r.seen, r.ready = pos.Epoch, pos.Seq, pos.Seq, true
	pending := r.pending
	r.pending = nil
	for _, m := range pending {
		b.handleLocked(ctx, r, m)
	}
	r.mu.Unlock()
	return cancel, nil
}

func (b *RedisBus) canceler(r *redisRoom, s *memSub) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			for i, x := range r.subs {
				if x == s {
					r.subs = append(r.subs[:i:i], r.subs[i+1:]...)
					break
				}
			}
			empty := len(r.subs) == 0
			r.mu.Unlock()
			if empty {
				b.drop(r)
			}
		})
	}
}

// drop unsubscribes the node from r's room if r still has no handlers.
func (b *RedisBus) drop(r *redisRoom) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.mu.Lock()
	empty := len(r.subs) == 0
	r.mu.Unlock()
	if !empty || b.rooms[r.id] != r {
		return
	}
	delete(b.rooms, r.id)
	if b.ps != nil && !b.closed {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := b.ps.Unsubscribe(ctx, b.channel(r.id)); err != nil {
			b.cfg.Log.Warn("bus unsubscribe", "room", r.id, "err", err)
		}
	}
}

// startLocked opens the pub/sub connection and starts the reader and the
// checker on first use; Close stops them. b.mu is held.
func (b *RedisBus) startLocked() {
	if b.ps != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	b.ps = b.rdb.Subscribe(ctx)
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.read(ctx, b.ps) }()
	go func() { defer b.wg.Done(); b.check(ctx) }()
}

// Close stops the pub/sub reader; subscriptions end.
func (b *RedisBus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps, stop := b.ps, b.stop
	b.mu.Unlock()
	if ps == nil {
		return nil
	}
	stop()
	err := ps.Close()
	b.wg.Wait()
	return err
}

// read receives the node's pub/sub messages. go-redis reconnects and
// resubscribes after an error; every (re)subscription confirmation makes
// the room catch up from the stream, so nothing published meanwhile is lost.
func (b *RedisBus) read(ctx context.Context, ps *redis.PubSub) {
	for {
		msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(ctx)
				continue
			}
			b.cfg.Log.Debug("bus pub/sub", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			b.mu.Lock()
			ws := b.waiters[m.Channel]
			delete(b.waiters, m.Channel)
			b.mu.Unlock()
			for _, w := range ws {
				w <- struct{}{}
			}
			if len(ws) == 0 { // a resubscription after a reconnect
				if r := b.lookup(m.Channel); r != nil {
					b.catchUp(ctx, r, true)
				}
			}
		case *redis.Message:
			if strings.HasPrefix(m.Payload, b.self) {
				continue // delivered here by Send
			}
			if r := b.lookup(m.Channel); r != nil {
				b.handle(ctx, r, m.Payload)
			}
		}
	}
}

func (b *RedisBus) lookup(channel string) *redisRoom {
	id, ok := b.roomOf(channel)
	if !ok {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rooms[id]
}

func (b *RedisBus) handle(ctx context.Context, r *redisRoom, payload string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ready {
		r.pending = append(r.pending, payload)
		return
	}
	b.handleLocked(ctx, r, payload)
}

func (b *RedisBus) handleLocked(ctx context.Context, r *redisRoom, payload string) {
	switch {
	case strings.HasPrefix(payload, "T"):
		var e envelope
		if err := json.Unmarshal([]byte(payload[1:]), &e); err != nil {
			b.cfg.Log.Warn("bus: bad delivery", "room", r.id, "err", err)
			return
		}
		if e.Node == b.id {
			return // delivered here by Send
		}
		d := Delivery{Event: Event{Type: e.Type, Body: e.Body, Ref: e.Ref}, UserID: e.UserID, MinRole: e.MinRole, Close: e.Close}
		for _, s := range r.subs {
			s.h(d)
		}
	case strings.HasPrefix(payload, "E"):
		ev, epoch, err := parseEvent(payload)
		if err != nil {
			b.cfg.Log.Warn("bus: bad event", "room", r.id, "err", err)
			return
		}
		if epoch != r.epoch {
			// Either the room's stream restarted (Redis lost it) or this is
			// a stale message of the old epoch read after the switch: only
			// Redis knows which.
			pos, err := b.Position(ctx, r.id)
			if err != nil || pos.Epoch != epoch {
				return // the checker catches up once Redis answers
			}
			r.epoch, r.last, r.seen = epoch, 0, 0
		}
		if ev.Seq <= r.last {
			return // already delivered from the stream
		}
		if ev.Seq > r.last+1 {
			b.fillLocked(ctx, r, ev.Seq-1)
		}
		if ev.Seq <= r.last {
			return
		}
		r.last = ev.Seq
		for _, s := range r.subs {
			s.h(Delivery{Event: ev})
		}
	}
}

// fillLocked delivers the kept events after r.last up to upto (0: all)
// from the stream; transient ones in the gap are gone, which is fine.
func (b *RedisBus) fillLocked(ctx context.Context, r *redisRoom, upto uint64) {
	evs, pos, complete, err := b.since(ctx, r.id, r.last)
	if err != nil {
		b.cfg.Log.Warn("bus: fill gap", "room", r.id, "err", err)
		return
	}
	if pos.Epoch != r.epoch {
		r.epoch, r.last = pos.Epoch, 0
		evs, pos, complete, err = b.since(ctx, r.id, 0)
		if err != nil {
			return
		}
	}
	if !complete {
		b.cfg.Log.Warn("bus: events lost beyond history", "room", r.id, "after", r.last, "seq", pos.Seq)
	}
	for _, ev := range evs {
		if upto > 0 && ev.Seq > upto {
			break
		}
		if ev.Seq <= r.last {
			continue
		}
		r.last = ev.Seq
		for _, s := range r.subs {
			s.h(Delivery{Event: ev})
		}
	}
	if upto == 0 || pos.Seq < upto {
		upto = pos.Seq
	}
	r.last = max(r.last, upto)
}

// check looks at every subscribed room now and then: a seq that is ahead of
// what was delivered for two checks in a row means pub/sub lost messages.
func (b *RedisBus) check(ctx context.Context) {
	t := time.NewTicker(b.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		list := make([]*redisRoom, 0, len(b.rooms))
		for _, r := range b.rooms {
			list = append(list, r)
		}
		b.mu.Unlock()
		for _, r := range list {
			b.catchUp(ctx, r, false)
		}
	}
}

// catchUp fills r from the stream if it is behind (now: at once; else only
// if it was already behind at the previous check).
func (b *RedisBus) catchUp(ctx context.Context, r *redisRoom, now bool) {
	var pos Position
	var err error
	if now {
		pos, err = b.Position(ctx, r.id) // after a reconnect: notice a new Redis at once
	} else {
		pos, err = b.peek(ctx, r.id) // the periodic check reads only
	}
	if err != nil || pos.Epoch == "" {
		return // no epoch: the next publish starts one, and its event brings it here
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ready {
		return
	}
	behind := pos.Epoch != r.epoch || pos.Seq > r.last
	if behind && (now || r.seen > r.last || pos.Epoch != r.epoch) {
		if pos.Epoch != r.epoch {
			r.epoch, r.last = pos.Epoch, 0
		}
		b.fillLocked(ctx, r, pos.Seq)
	}
	r.seen = pos.Seq
}

func (b *RedisBus) Since(ctx context.Context, roomID string, after uint64) ([]Event, Position, bool, error) {
	return b.since(ctx, roomID, after)
}

func (b *RedisBus) since(ctx context.Context, roomID string, after uint64) ([]Event, Position, bool, error) {
	v, err := luaSince.Run(ctx, b.pipe, b.keys(roomID), RandomID(4), after).Slice()
	if err == nil && len(v) != 4 {
		err = errUnexpectedReply
	}
	if err != nil {
		return nil, Position{}, false, fmt.Errorf("bus: since: %w", err)
	}
	seq, _ := v[0].(int64)
	epoch, _ := v[1].(string)
	floor, _ := v[2].(int64)
	pos := Position{Seq: uint64(seq), Epoch: epoch}
	if after > pos.Seq || after < uint64(floor) {
		return nil, pos, false, nil
	}
	raw, _ := v[3].([]any)
	out := make([]Event, 0, len(raw))
	for _, x := range raw {
		s, _ := x.(string)
		ev, _, err := parseEvent(s)
		if err != nil {
			return nil, pos, false, err
		}
		out = append(out, ev)
	}
	return out, pos, true, nil
}

func (b *RedisBus) Position(ctx context.Context, roomID string) (Position, error) {
	return b.position(ctx, luaPosition, roomID)
}

func (b *RedisBus) peek(ctx context.Context, roomID string) (Position, error) {
	return b.position(ctx, luaPeek, roomID)
}

func (b *RedisBus) position(ctx context.Context, script *redis.Script, roomID string) (Position, error) {
	v, err := script.Run(ctx, b.pipe, b.keys(roomID), RandomID(4)).Slice()
	if err == nil && len(v) != 2 {
		err = errUnexpectedReply
	}
	if err != nil {
		return Position{}, fmt.Errorf("bus: position: %w", err)
	}
	seq, _ := v[0].(int64)
	epoch, _ := v[1].(string)
	return Position{Seq: uint64(seq), Epoch: epoch}, nil
}

func (b *RedisBus) Presence(ctx context.Context, roomID, node string, conns int) (int, error) {
	n, err := luaPresence.Run(ctx, b.pipe, []string{b.key(roomID, "pres")}, node, conns, b.cfg.PresenceTTL.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("bus: presence: %w", err)
	}
	return n, nil
}

func (b *RedisBus) Add(ctx context.Context, roomID, counter string, delta int64) (int64, error) {
	cmd := redis.NewIntCmd(ctx, "hincrby", b.key(roomID, "ctr"), counter, delta)
	cmd.SetFirstKeyPos(1)
	if err := b.pipe.Do(ctx, cmd); err != nil {
		return 0, fmt.Errorf("bus: add: %w", err)
	}
	return cmd.Val(), nil
}
