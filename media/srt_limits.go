package media

// Refusal reasons of the SRT connection caps (connCaps; the
// liveroom_media_admissions_refused_total label).
const (
	refuseSRTAddress = "srt_connections_per_address"
	refuseSRTNode    = "srt_connections_per_node"
)
