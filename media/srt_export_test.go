package media

import "time"

// SetSRTFirstPacket lets tests see when a publisher's first MPEG-TS bytes
// arrived.
func SetSRTFirstPacket(ss *SRTServer, f func(roomID string, at time.Time)) { ss.firstPacket.Store(&f) }

// SetSRTTrace lets tests see when each demuxed video access unit leaves
// the MPEG-TS demuxer.
func SetSRTTrace(ss *SRTServer, f func(ts uint32, at time.Time)) { ss.trace.Store(&f) }
