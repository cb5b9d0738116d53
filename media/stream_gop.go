package media

// gopCache keeps the last video keyframe and every access unit (both kinds)
// that followed it, so that a new reader starts decoding at once instead of
// waiting for a keyframe the source may not be able to make (RTSP, RTMP,
// SRT). It is bounded in bytes: a GOP that outgrows max is dropped, and
// readers opened meanwhile wait for the next keyframe. Guarded by stream.mu.
type gopCache struct {
	aus   []*AccessUnit
	bytes int
	max   int
}

// add records au: a keyframe starts a new GOP; anything else extends the
// current one, if there is one (audio before the first keyframe is not kept:
// a reader starts at the keyframe).
func (g *gopCache) add(au *AccessUnit) {
	switch {
	case au.Video && au.Key:
		g.reset()
	case len(g.aus) == 0:
		return
	}
	g.bytes += au.size
	if g.bytes > g.max {
		g.reset()
		return
	}
	g.aus = append(g.aus, au)
}

// start returns what a new reader gets first: the cached GOP, keyframe
// first, or nothing. The slice is the caller's.
func (g *gopCache) start() []*AccessUnit {
	if len(g.aus) == 0 {
		return nil
	}
	return append([]*AccessUnit(nil), g.aus...)
}

// reset forgets the GOP (a new keyframe, the source went away, too big).
func (g *gopCache) reset() {
	clear(g.aus)
	g.aus, g.bytes = g.aus[:0], 0
}
