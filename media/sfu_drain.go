package media

// Sessions is the number of WebRTC viewer sessions on this node, in every
// room (a draining node waits for it to reach zero).
func (s *SFU) Sessions() int {
	n := 0
	for _, r := range s.allRooms() {
		n += r.viewerCount()
	}
	return n
}

func (s *SFU) allRooms() []*room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// RoomsServed lists the rooms with a WebRTC viewer or a host on this node:
// the rooms a draining node tells to move.
func (s *SFU) RoomsServed() []string {
	var out []string
	for _, r := range s.allRooms() {
		r.mu.Lock()
		if r.nViewers > 0 || (r.src != nil && !isEdge(r.src)) {
			out = append(out, r.id)
		}
		r.mu.Unlock()
	}
	return out
}
