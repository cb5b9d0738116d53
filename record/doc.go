// Package record records shows: each live room whose recording is on is
// read from the media seam (access units on the room clock, audio as AAC)
// and written as fMP4 segments with an HLS VOD playlist, beside the show's
// product script and chat log; Library lists, serves and sweeps them.
// See docs/recording.md.
package record
