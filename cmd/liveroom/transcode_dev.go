package main

import (
	"fmt"
	"io"
	"log/slog"

	"liveroom/media"
)

// devAudioCheck tells a developer whether hosts sending AAC (RTMP, SRT, RTSP
// cameras) will be heard: that needs ffmpeg with libopus, which liveroom
// does not install.
func devAudioCheck(w io.Writer, log *slog.Logger) {
	if err := media.TranscoderAvailable(); err != nil {
		log.Warn("aac transcoder unavailable", "err", err)
		fmt.Fprintf(w, "AAC audio: MISSING: %v\n  (video still flows; hosts sending AAC are told their audio is dropped)\n", err)
		return
	}
	fmt.Fprintln(w, "AAC audio: ffmpeg with libopus found; AAC is transcoded to Opus")
}
