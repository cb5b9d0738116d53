package media

import (
	"errors"
	"time"
)

// aacOut is what an access-unit source feeds AAC into: a transcoder to
// Opus (transcode.go), when the server has one.
type aacOut interface {
	Write(au []byte, pts time.Duration) error
	Close() error
}

// newAACOut starts an AAC→Opus transcoder for one source; an error means
// the audio is dropped and the host told why.
func newAACOut(asc []byte, out func(opus []byte, pts time.Duration)) (aacOut, error) {
	return nil, errors.New("this server has no AAC→Opus transcoder")
}
