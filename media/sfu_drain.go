package media

// Sessions is the number of WebRTC viewer sessions on this node, in every
// room (a draining node waits for it to reach zero).
func (s *SFU) Sessions() int {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	n := 0
	for _, r := range rooms {
		n += r.viewerCount()
	}
	return n
}
