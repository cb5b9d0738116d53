package media

// pathSample is the viewer's latest bandwidth sample (kept by its layer
// control, viewer_layer.go, after each feedback or receiver report); the
// zero sample before any. The fast start's window reads it from the
// writer goroutine (faststart_window.go).
func (v *viewer) pathSample() bweSample {
	v.ctl.mu.Lock()
	defer v.ctl.mu.Unlock()
	return v.ctl.last
}
