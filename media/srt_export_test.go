package media

import "time"

// SetSRTFirstPacket lets tests see when a publisher's first MPEG-TS bytes
// arrived.
func SetSRTFirstPacket(ss *SRTServer, f func(roomID string, at time.Time)) { ss.firstPacket = f }
