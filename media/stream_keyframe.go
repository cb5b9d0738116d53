package media

// RequestKeyframe asks the room's source for a keyframe, throttled like a
// viewer's request. An output that cuts segments (the recorder, HLS) asks
// when a segment is due: a WebRTC encoder sends keyframes only when asked.
// Safe from any goroutine, never blocks.
func (rd *Reader) RequestKeyframe() { rd.st.r.video.requestKeyframe() }

// RequestKeyframe asks the room's source for a keyframe (Reader.RequestKeyframe).
func (a *AACReader) RequestKeyframe() { a.rd.RequestKeyframe() }
