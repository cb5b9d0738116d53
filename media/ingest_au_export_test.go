package media

import "time"

// TranscoderAvailableForTest reports whether AAC reaches viewers as Opus.
func TranscoderAvailableForTest() bool {
	t, err := newAACOut([]byte{0x11, 0x90}, func([]byte, time.Duration) {})
	if err != nil {
		return false
	}
	_ = t.Close()
	return true
}
