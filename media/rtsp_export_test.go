package media

import "time"

// SetRTSPTrace lets tests see every RTSP packet as it arrives (latency
// measurements).
func SetRTSPTrace(s *SFU, fn func(video bool, ts uint32, marker bool, at time.Time)) {
	s.rtsp.mu.Lock()
	s.rtsp.trace = fn
	s.rtsp.mu.Unlock()
}
