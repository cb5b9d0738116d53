package media

import "time"

// aacOut is what an access-unit source feeds AAC into: the AAC→Opus
// transcoder (transcode.go).
type aacOut interface {
	Write(au []byte, pts time.Duration) error
	Close() error
}

// newAACOut starts an AAC→Opus transcoder for one source; an error (no
// ffmpeg with libopus, a bad AudioSpecificConfig) means the audio is
// dropped and the host told why.
func newAACOut(asc []byte, out func(opus []byte, pts time.Duration)) (aacOut, error) {
	return NewAACTranscoder(asc, out)
}
