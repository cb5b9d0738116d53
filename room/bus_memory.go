package room

import (
	"context"
	"errors"
	"sync"
	"time"
)

// MemoryBus is the one-node Bus: every room is a struct behind a mutex.
// Several hubs may share one MemoryBus to act as nodes of one cluster in a
// test process.
type MemoryBus struct {
	history int
	now     func() time.Time
	// presenceTTL is how long a node's presence report counts.
	presenceTTL time.Duration

	mu    sync.Mutex
	rooms map[string]*memRoom
}

var _ Bus = (*MemoryBus)(nil)

type memRoom struct {
	mu       sync.Mutex
	epoch    string
	seq      uint64
	floor    uint64  // every non-transient event with seq > floor is in ring
	ring     []Event // oldest first once full: ring[start:] + ring[:start]
	start    int
	subs     []*memSub
	counters map[string]int64
	presence map[string]memPresence
}

type memSub struct{ h func(Delivery) }

type memPresence struct {
	conns int
	at    time.Time
}

// NewMemoryBus returns a Bus for one node that keeps history events per
// room for resume.
func NewMemoryBus(history int) *MemoryBus {
	if history < 1 {
		history = 1
	}
	return &MemoryBus{history: history, now: time.Now, presenceTTL: 10 * time.Second, rooms: map[string]*memRoom{}}
}

func (b *MemoryBus) room(id string) *memRoom {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[id]
	if r == nil {
		r = &memRoom{epoch: RandomID(4), counters: map[string]int64{}, presence: map[string]memPresence{}}
		b.rooms[id] = r
	}
	return r
}

func (b *MemoryBus) Publish(ctx context.Context, roomID string, ev Event) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	if roomID == "" {
		return Event{}, errors.New("bus: empty room id")
	}
	r := b.room(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	ev.Seq = r.seq
	ev.TS = b.now().UnixMilli()
	ev.Ref = ""
	if !ev.Transient {
		r.keep(ev, b.history)
	}
	// Delivering under the room lock keeps every node's view in seq order;
	// handlers only enqueue, so this is short.
	for _, s := range r.subs {
		s.h(Delivery{Event: ev})
	}
	return ev, nil
}

func (r *memRoom) keep(ev Event, size int) {
	if len(r.ring) < size {
		r.ring = append(r.ring, ev)
		return
	}
	r.floor = r.ring[r.start].Seq
	r.ring[r.start] = ev
	r.start = (r.start + 1) % len(r.ring)
}

func (b *MemoryBus) Send(ctx context.Context, roomID string, d Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := b.room(roomID)
	d.Event.Seq, d.Event.TS = 0, 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		s.h(d)
	}
	return nil
}

func (b *MemoryBus) Subscribe(ctx context.Context, roomID string, h func(Delivery)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := b.room(roomID)
	s := &memSub{h: h}
	r.mu.Lock()
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			for i, x := range r.subs {
				if x == s {
					r.subs = append(r.subs[:i:i], r.subs[i+1:]...)
					break
				}
			}
		})
	}, nil
}

func (b *MemoryBus) Since(ctx context.Context, roomID string, after uint64) ([]Event, Position, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, Position{}, false, err
	}
	r := b.room(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	pos := Position{Seq: r.seq, Epoch: r.epoch}
	if after > r.seq || after < r.floor {
		return nil, pos, false, nil
	}
	var out []Event
	n := len(r.ring)
	for i := 0; i < n; i++ {
		ev := r.ring[(r.start+i)%n]
		if ev.Seq > after {
			out = append(out, ev)
		}
	}
	return out, pos, true, nil
}

func (b *MemoryBus) Position(ctx context.Context, roomID string) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	r := b.room(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	return Position{Seq: r.seq, Epoch: r.epoch}, nil
}

func (b *MemoryBus) Presence(ctx context.Context, roomID, node string, conns int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := b.room(roomID)
	now := b.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if conns > 0 {
		r.presence[node] = memPresence{conns: conns, at: now}
	} else {
		delete(r.presence, node)
	}
	total := 0
	for n, p := range r.presence {
		if now.Sub(p.at) > b.presenceTTL {
			delete(r.presence, n)
			continue
		}
		total += p.conns
	}
	return total, nil
}

func (b *MemoryBus) Add(ctx context.Context, roomID, counter string, delta int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := b.room(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counters[counter] += delta
	return r.counters[counter], nil
}
