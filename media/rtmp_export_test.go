package media

import "time"

// SetRTMPTrace lets tests see when each RTMP video frame arrives.
func SetRTMPTrace(rs *RTMPServer, fn func(ts uint32, at time.Time)) { rs.trace.Store(&fn) }
