package cart

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The LocalGiveaways bbolt layout, inside the LocalStore's database (so a
// room's ForgetScope drops it with the room's bucket):
//
//	rooms/<room>/giveaways/<id>/rec           gwRecord
//	rooms/<room>/giveaways/<id>/entries/<n>   gwEntryRec, n = entry's place (4 bytes big-endian)
//	rooms/<room>/chatters/<user>              last post noted (unix ms, 8 bytes big-endian)
//
// A running giveaway is written at its start and at each entry; its end is
// written in the same transaction as its prize orders, so that a restart
// either ends it (once) or finds it ended. Closing is not written: the
// entry list is, and a restart closes it again at the same instant.
var (
	bChatters  = []byte("chatters")
	bGiveaways = []byte("giveaways")
	bGwEntries = []byte("entries")
	kGwRec     = []byte("rec")
)

// gwRecord is a giveaway as stored, with what its JSON view hides.
type gwRecord struct {
	G       Giveaway    `json:"g"`
	Host    string      `json:"host"`
	Seed    string      `json:"seed"`
	Held    int         `json:"held"`
	Winners []winnerRec `json:"winners,omitempty"`
	// Unannounced: ended, `giveaway.ended` not yet confirmed published.
	Unannounced bool `json:"unannounced,omitempty"`
}

type gwEntryRec struct {
	Entry string `json:"e"`
	User  string `json:"u"`
	Name  string `json:"n"`
}

func recordOf(lg *localGiveaway) gwRecord {
	rec := gwRecord{G: lg.g, Host: lg.g.Host, Seed: lg.seed, Held: lg.held, Unannounced: lg.unannounced}
	rec.G.Result = nil
	for _, w := range lg.g.Result {
		rec.Winners = append(rec.Winners, winnerRec{Entry: w.Entry, Name: w.Name, User: w.User, Order: w.OrderID})
	}
	return rec
}

// putGiveaway writes lg's record (not its entries).
func putGiveaway(tx *bolt.Tx, room string, lg *localGiveaway) error {
	gb, err := roomBucket(tx, room, bGiveaways)
	if err != nil {
		return err
	}
	b, err := gb.CreateBucketIfNotExists([]byte(lg.g.ID))
	if err != nil {
		return err
	}
	if _, err := b.CreateBucketIfNotExists(bGwEntries); err != nil {
		return err
	}
	return putJSON(b, kGwRec, recordOf(lg))
}

// putGiveawayEntry writes the entry at place n.
func putGiveawayEntry(tx *bolt.Tx, room, id string, n int, e gwEntryRec) error {
	gb := roomBucketRO(tx, room, bGiveaways)
	if gb == nil || gb.Bucket([]byte(id)) == nil {
		return fmt.Errorf("giveaway %s missing from the database", id)
	}
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], uint32(n))
	return putJSON(gb.Bucket([]byte(id)).Bucket(bGwEntries), k[:], e)
}

func deleteGiveaway(tx *bolt.Tx, room, id string) error {
	gb := roomBucketRO(tx, room, bGiveaways)
	if gb == nil {
		return nil
	}
	if err := gb.DeleteBucket([]byte(id)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return err
	}
	return nil
}

// load rebuilds every room's giveaways from the database and holds the
// prize units of the running ones again (held units are not written: the
// LocalStore's loaded stock still counts them).
func (s *LocalGiveaways) load() error {
	type loaded struct {
		room string
		lg   *localGiveaway
	}
	var all []loaded
	err := s.cart.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bRooms).ForEachBucket(func(room []byte) error {
			gb := tx.Bucket(bRooms).Bucket(room).Bucket(bGiveaways)
			if gb == nil {
				return nil
			}
			return gb.ForEachBucket(func(id []byte) error {
				lg, err := loadGiveaway(gb.Bucket(id))
				if err != nil {
					return fmt.Errorf("giveaway %s/%s: %w", room, id, err)
				}
				all = append(all, loaded{string(room), lg})
				return nil
			})
		})
	})
	if err != nil {
		return fmt.Errorf("cart: load giveaways: %w", err)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].lg.g, all[j].lg.g
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.Before(b.StartedAt)
		}
		return a.ID < b.ID
	})
	for _, l := range all {
		gr := s.room(l.room)
		gr.byID[l.lg.g.ID] = l.lg
		gr.order = append(gr.order, l.lg.g.ID)
		if l.lg.g.State == GiveawayEnded {
			if l.lg.unannounced { // ended just before a crash: the first EndDue announces it
				s.unannounced[saleRef{l.room, l.lg.g.ID}] = time.Time{}
			}
			continue
		}
		l.lg.g.State = GiveawayOpen // the next EndDue closes it by its end
		gr.running = l.lg.g.ID
		if l.lg.held == 0 {
			continue
		}
		r := s.cart.room(l.room)
		r.mu.Lock()
		if p := r.products[l.lg.g.Prize.SKU]; p != nil {
			l.lg.held = min(l.lg.held, max(p.Stock, 0))
			p.Stock -= l.lg.held
			r.pheld[p.SKU] += l.lg.held
		} else {
			l.lg.held = 0 // cannot happen: a product with held units is not deleted
		}
		r.mu.Unlock()
	}
	return nil
}

func loadGiveaway(b *bolt.Bucket) (*localGiveaway, error) {
	var rec gwRecord
	if err := json.Unmarshal(b.Get(kGwRec), &rec); err != nil {
		return nil, err
	}
	lg := &localGiveaway{g: rec.G, seed: rec.Seed, held: rec.Held, unannounced: rec.Unannounced, users: map[string]string{}, names: map[string]Entrant{}}
	lg.g.Host = rec.Host
	lg.g.Result = nil
	for _, w := range rec.Winners {
		lg.g.Result = append(lg.g.Result, Winner{Entry: w.Entry, Name: w.Name, User: w.User, OrderID: w.Order})
	}
	if eb := b.Bucket(bGwEntries); eb != nil {
		err := eb.ForEach(func(k, v []byte) error { // keys sort by place
			var e gwEntryRec
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if len(k) == 4 {
				lg.next = int(binary.BigEndian.Uint32(k)) + 1
			}
			lg.users[e.User] = e.Entry
			lg.names[e.Entry] = Entrant{User: e.User, Name: e.Name}
			lg.entries = append(lg.entries, e.Entry)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	lg.g.Entrants = len(lg.entries)
	return lg, nil
}

// putChatter writes that user posted in room at ms (rule "chatted").
func putChatter(tx *bolt.Tx, room, user string, ms int64) error {
	b, err := roomBucket(tx, room, bChatters)
	if err != nil {
		return err
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(ms))
	return b.Put([]byte(user), v[:])
}

// loadChatters reads every room's chatters noted within chatterTTL of now
// and deletes the older ones.
func (s *LocalGiveaways) loadChatters(now time.Time) error {
	return s.cart.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bRooms).ForEachBucket(func(room []byte) error {
			b := tx.Bucket(bRooms).Bucket(room).Bucket(bChatters)
			if b == nil {
				return nil
			}
			var stale [][]byte
			m := map[string]time.Time{}
			err := b.ForEach(func(k, v []byte) error {
				if len(v) != 8 {
					stale = append(stale, k)
					return nil
				}
				at := time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
				if now.Sub(at) > chatterTTL || len(m) >= maxChatters {
					stale = append(stale, k)
					return nil
				}
				m[string(k)] = at
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			if len(m) > 0 {
				s.chatters[string(room)] = m
			}
			return nil
		})
	})
}
