// Package mediatest provides real WebRTC peers for tests and load tools: a
// Publisher that plays the committed H264/Opus clips at real-time pace and a
// Viewer that records what it receives. Both signal through a Signal
// function, so a test can wire them straight to the media Go API or through
// HTTP with the WHIP/WHEP signalers.
//
// It deliberately does not import package media, so media's own tests can
// use it.
package mediatest
