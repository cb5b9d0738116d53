package room

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// shard is one slice of the node's room table.
type shard struct {
	mu    sync.Mutex
	rooms map[string]*localRoom
}

// localRoom is a room as seen by this node: its local connections and the
// bus subscription that feeds them.
type localRoom struct {
	id  string
	hub *Hub

	mu      sync.RWMutex
	conns   []*conn
	byUser  map[string][]*conn // the same connections by user id, for SendUser
	gone    bool               // removed from its shard; joiners must look again
	unsub   func()
	idle    int // viewer ticks with no connections
	subErr  error
	subOnce sync.Once

	lastViewers  atomic.Int64 // last count published (from any node); -1 unknown
	pendingLikes atomic.Int64 // likes not yet added to the bus counter
}

var shardSeed = maphash.MakeSeed()

func (h *Hub) shardFor(roomID string) *shard {
	return h.shards[maphash.String(shardSeed, roomID)%uint64(len(h.shards))]
}

// lookup returns the local room if this node has one.
func (h *Hub) lookup(roomID string) *localRoom {
	s := h.shardFor(roomID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[roomID]
}

// join registers c in its room, subscribing the node to the room first if
// c is the room's first local connection.
func (h *Hub) join(ctx context.Context, roomID string, c *conn) (*localRoom, error) {
	for {
		s := h.shardFor(roomID)
		s.mu.Lock()
		lr := s.rooms[roomID]
		if lr == nil {
			lr = &localRoom{id: roomID, hub: h}
			lr.lastViewers.Store(-1)
			s.rooms[roomID] = lr
			h.m.rooms.Inc()
		}
		s.mu.Unlock()

		lr.subOnce.Do(func() {
			lr.unsub, lr.subErr = h.bus.Subscribe(ctx, roomID, lr.deliver)
		})
		lr.mu.Lock()
		if lr.gone {
			lr.mu.Unlock()
			continue
		}
		if lr.subErr != nil {
			// Forget this room so that the next joiner subscribes afresh:
			// one failure (Redis away for a moment) must not stick.
			err := lr.subErr
			lr.gone = true
			lr.mu.Unlock()
			s.mu.Lock()
			if s.rooms[roomID] == lr {
				delete(s.rooms, roomID)
				h.m.rooms.Dec()
			}
			s.mu.Unlock()
			return nil, err
		}
		c.lr = lr
		c.slot = len(lr.conns)
		lr.conns = append(lr.conns, c)
		if lr.byUser == nil {
			lr.byUser = make(map[string][]*conn)
		}
		lr.byUser[c.id.ID] = append(lr.byUser[c.id.ID], c)
		lr.idle = 0
		lr.mu.Unlock()
		h.m.conns.Inc()
		h.conns.Add(1)
		return lr, nil
	}
}

// leave removes c from its room; the viewer tick retires empty rooms.
func (h *Hub) leave(c *conn) {
	h.ips.release(c.ip)
	lr := c.lr
	lr.mu.Lock()
	if i := c.slot; i >= 0 && i < len(lr.conns) && lr.conns[i] == c {
		last := len(lr.conns) - 1
		lr.conns[i] = lr.conns[last]
		lr.conns[i].slot = i
		lr.conns[last] = nil
		lr.conns = lr.conns[:last]
		c.slot = -1
		lr.dropUserLocked(c)
		h.m.conns.Dec()
		h.conns.Add(-1)
	}
	lr.mu.Unlock()
}

// dropUserLocked removes c from lr.byUser; lr.mu is held.
func (lr *localRoom) dropUserLocked(c *conn) {
	list := lr.byUser[c.id.ID]
	for i, o := range list {
		if o == c {
			last := len(list) - 1
			list[i], list[last] = list[last], nil
			list = list[:last]
			break
		}
	}
	if len(list) == 0 {
		delete(lr.byUser, c.id.ID)
	} else {
		lr.byUser[c.id.ID] = list
	}
}

// retire drops the room from its shard if it has had no connections for a
// while, and unsubscribes the node. It reports whether it did.
func (h *Hub) retire(lr *localRoom) bool {
	s := h.shardFor(lr.id)
	s.mu.Lock()
	lr.mu.Lock()
	if len(lr.conns) > 0 || lr.idle < 2 {
		lr.mu.Unlock()
		s.mu.Unlock()
		return false
	}
	lr.gone = true
	if s.rooms[lr.id] == lr {
		delete(s.rooms, lr.id)
		h.m.rooms.Dec()
	}
	unsub := lr.unsub
	lr.mu.Unlock()
	s.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	return true
}

// rooms lists the local rooms.
func (h *Hub) localRooms() []*localRoom {
	var out []*localRoom
	for _, s := range h.shards {
		s.mu.Lock()
		for _, lr := range s.rooms {
			out = append(out, lr)
		}
		s.mu.Unlock()
	}
	return out
}

// retirePumps pokes write pumps idle since before idleSince: they exit.
func (lr *localRoom) retirePumps(idleSince int64) {
	lr.mu.RLock()
	defer lr.mu.RUnlock()
	for _, c := range lr.conns {
		if c.lastActive.Load() < idleSince {
			c.signal()
		}
	}
}

func (lr *localRoom) count() int {
	lr.mu.RLock()
	defer lr.mu.RUnlock()
	return len(lr.conns)
}

// deliver is the bus handler: it encodes the event once and queues it to
// every matching local connection. It never blocks on a connection.
func (lr *localRoom) deliver(d Delivery) {
	h := lr.hub
	start := time.Now()
	ev := d.Event
	if ev.Seq > 0 && ev.Type == "viewers" {
		var n int64
		if ok, err := ev.Field("count", &n); ok && err == nil {
			lr.lastViewers.Store(n)
		}
	}
	it := prepare(ev)
	it.seq = ev.Seq
	n := 0
	lr.mu.RLock()
	conns := lr.conns
	if ev.Seq == 0 && d.UserID != "" {
		// A reply to one buyer must not walk a room of thousands.
		conns = lr.byUser[d.UserID]
	}
	for _, c := range conns {
		if ev.Seq == 0 && !d.matches(c) {
			continue
		}
		if d.Close != "" {
			c.kick(closeCodeFor(d.Close), d.Close, it.f)
			n++
			continue
		}
		if c.push(it) {
			n++
		}
	}
	lr.mu.RUnlock()
	h.m.deliveries.Add(float64(n))
	h.m.published.WithLabelValues(eventLabel(ev.Type)).Inc()
	h.m.fanout.Observe(time.Since(start).Seconds())
}

func (d Delivery) matches(c *conn) bool {
	if d.UserID != "" && c.id.ID != d.UserID {
		return false
	}
	return c.id.Role.AtLeast(d.MinRole)
}

// eventLabel keeps the metric's label set bounded.
func eventLabel(t string) string {
	if len(t) > 32 {
		return "other"
	}
	return t
}
