package media

import "time"

// SetRTSPTrace lets tests see every RTSP packet as it arrives (latency
// measurements).
func SetRTSPTrace(s *SFU, fn func(video bool, ts uint32, marker bool, at time.Time)) {
	s.rtsp.mu.Lock()
	s.rtsp.trace = fn
	s.rtsp.mu.Unlock()
}

// RoomTaps is how many taps a room's forwarders feed (RTSP readers of a
// room not published over RTSP).
func RoomTaps(s *SFU, roomID string) int {
	r, ok := s.lookup(roomID)
	if !ok {
		return 0
	}
	return len(*r.taps.Load())
}
