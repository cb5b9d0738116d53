package record

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"liveroom/media"
)

// segmenter writes one show's fMP4 segments and its HLS playlist. Times it
// gets are on the show timeline (room clock minus the offline pauses). It
// runs on its show's goroutine only.
//
// Crash safety: a segment is written to a temporary name, fsynced and
// renamed, then the playlist is rewritten the same way; a kill -9 leaves
// every segment the playlist names complete.
type segmenter struct {
	dir    string
	target time.Duration
	audio  bool // the init has an AAC track

	initN    int // current init segment number (0: none yet)
	params   *media.Params
	segN     int
	entries  []playlistEntry
	bytes    int64
	maxDur   time.Duration
	finished bool

	// samples of the segment in progress
	video    []vsample
	segStart time.Duration
	aq       []asample // audio not yet written (may run past the cut)
	lastDur  time.Duration
	// pending is a cut segment waiting for its audio: AAC arrives later
	// than the video of the same time (the transcoder's delay).
	pending *pendingSeg
}

type pendingSeg struct {
	video      []vsample
	start, end time.Duration
	init       int
}

// audioWait bounds how long a cut segment waits for audio (in video time).
const audioWait = 700 * time.Millisecond

type vsample struct {
	pts  time.Duration
	data []byte // AVCC
	key  bool
}

type asample struct {
	pts  time.Duration
	data []byte
}

type playlistEntry struct {
	init  int // EXT-X-MAP of this segment; a change writes a discontinuity
	name  string
	dur   time.Duration
	start time.Duration
}

const (
	videoScale = 90000
	audioScale = 48000
	// maxSegmentFactor: a source that sends no keyframe for this many
	// targets gets its segment cut anyway (bounded memory).
	maxSegmentFactor = 4
)

func newSegmenter(dir string, target time.Duration, audio bool) *segmenter {
	return &segmenter{dir: dir, target: target, audio: audio, lastDur: 33 * time.Millisecond}
}

// duration is the show's length as written.
func (sg *segmenter) duration() time.Duration {
	if len(sg.entries) == 0 {
		return 0
	}
	e := sg.entries[len(sg.entries)-1]
	return e.start + e.dur
}

// end is where the next segment starts on the show timeline.
func (sg *segmenter) end() time.Duration {
	if len(sg.video) > 0 {
		last := sg.video[len(sg.video)-1]
		return last.pts + sg.lastDur
	}
	if sg.pending != nil {
		return sg.pending.end
	}
	return sg.duration()
}

// videoAU takes an H264 access unit at show time pts.
func (sg *segmenter) videoAU(au *media.AccessUnit, pts time.Duration) error {
	if au.Codec != "H264" {
		return nil // the caller refuses non-H264 shows
	}
	if au.Key && (sg.params == nil || au.ParamsChanged || !sameParams(sg.params, au.Params)) && au.Params != nil {
		if err := sg.cut(pts); err != nil {
			return err
		}
		if err := sg.writeInit(au.Params); err != nil {
			return err
		}
	} else if len(sg.video) > 0 && (au.Key && pts-sg.segStart >= sg.target || pts-sg.segStart >= maxSegmentFactor*sg.target) {
		if err := sg.cut(pts); err != nil {
			return err
		}
	}
	if sg.initN == 0 {
		return nil // waiting for the first keyframe with parameters
	}
	avcc, err := h264.AVCC(au.NALUs).Marshal()
	if err != nil {
		return nil // an empty or broken unit: skip it
	}
	if n := len(sg.video); n > 0 {
		if d := pts - sg.video[n-1].pts; d > 0 && d < time.Second {
			sg.lastDur = d
		}
	} else {
		sg.segStart = pts
	}
	sg.video = append(sg.video, vsample{pts: pts, data: avcc, key: au.Key})
	return nil
}

// keyframeDue: the segment in progress reached its target; the next
// keyframe cuts it (a WebRTC source sends one only when asked).
func (sg *segmenter) keyframeDue(pts time.Duration) bool {
	return len(sg.video) > 0 && pts-sg.segStart >= sg.target
}

// audioAU takes an AAC access unit at show time pts.
func (sg *segmenter) audioAU(frame []byte, pts time.Duration) {
	floor := sg.segStart
	if sg.pending != nil {
		floor = sg.pending.start
	}
	if !sg.audio || sg.initN == 0 || pts < floor {
		return
	}
	if n := len(sg.aq); n > 0 && pts < sg.aq[n-1].pts {
		return
	}
	if len(sg.aq) > 2000 { // ~40 s of audio without video: drop the oldest
		sg.aq = sg.aq[1000:]
	}
	sg.aq = append(sg.aq, asample{pts: pts, data: bytes.Clone(frame)})
}

func sameParams(a, b *media.Params) bool {
	return b == nil || bytes.Equal(a.SPS, b.SPS) && bytes.Equal(a.PPS, b.PPS) && a.Width == b.Width && a.Height == b.Height
}

// cut ends the segment in progress at end (show time); it is written once
// its audio is in (maybeFlush) or when the next cut comes.
func (sg *segmenter) cut(end time.Duration) error {
	if len(sg.video) == 0 {
		return nil
	}
	if err := sg.flush(); err != nil {
		return err
	}
	if end <= sg.video[len(sg.video)-1].pts {
		end = sg.video[len(sg.video)-1].pts + sg.lastDur
	}
	sg.pending = &pendingSeg{video: sg.video, start: sg.segStart, end: end, init: sg.initN}
	sg.video, sg.segStart = nil, end
	return nil
}

// maybeFlush writes the pending segment once audio reached its end, or
// video ran audioWait past it (audio is late or absent).
func (sg *segmenter) maybeFlush(now time.Duration) error {
	p := sg.pending
	if p == nil {
		return nil
	}
	if sg.audio && now < p.end+audioWait && (len(sg.aq) == 0 || sg.aq[len(sg.aq)-1].pts < p.end) {
		return nil
	}
	return sg.flush()
}

// flush writes the pending segment, if any, and the playlist.
func (sg *segmenter) flush() error {
	p := sg.pending
	if p == nil {
		return nil
	}
	sg.pending = nil
	vt := &fmp4.PartTrack{ID: 1, BaseTime: toScale(p.start, videoScale)}
	for i, s := range p.video {
		next := p.end
		if i+1 < len(p.video) {
			next = p.video[i+1].pts
		}
		d := toScale(next, videoScale) - toScale(s.pts, videoScale)
		vt.Samples = append(vt.Samples, &fmp4.Sample{Duration: uint32(d), IsNonSyncSample: !s.key, Payload: s.data})
	}
	part := fmp4.Part{SequenceNumber: uint32(sg.segN + 1), Tracks: []*fmp4.PartTrack{vt}}
	if sg.audio {
		n := 0
		for n < len(sg.aq) && sg.aq[n].pts < p.end {
			n++
		}
		if n > 0 {
			at := &fmp4.PartTrack{ID: 2, BaseTime: toScale(sg.aq[0].pts, audioScale)}
			for _, a := range sg.aq[:n] {
				at.Samples = append(at.Samples, &fmp4.Sample{Duration: 1024, Payload: a.data})
			}
			part.Tracks = append(part.Tracks, at)
			sg.aq = sg.aq[n:]
		}
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	name := fmt.Sprintf("seg-%05d.m4s", sg.segN+1)
	if err := writeFileSync(filepath.Join(sg.dir, name), buf.Bytes()); err != nil {
		return err
	}
	sg.segN++
	sg.bytes += int64(buf.Len())
	dur := p.end - p.start
	sg.maxDur = max(sg.maxDur, dur)
	sg.entries = append(sg.entries, playlistEntry{init: p.init, name: name, dur: dur, start: p.start})
	return sg.writePlaylist()
}

// flushAll writes everything pending (the source went away).
func (sg *segmenter) flushAll() error {
	if err := sg.cut(sg.end()); err != nil {
		return err
	}
	return sg.flush()
}

func toScale(d time.Duration, scale int64) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d * time.Duration(scale) / time.Second)
}

// writeInit starts a new init segment for p (the first, or a parameter
// change: the playlist gets a discontinuity).
func (sg *segmenter) writeInit(p *media.Params) error {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: videoScale, Codec: &mp4.CodecH264{SPS: p.SPS, PPS: p.PPS}}}}
	if sg.audio {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: audioScale, Codec: &mp4.CodecMPEG4Audio{Config: media.AACConfig}})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return fmt.Errorf("init segment: %w", err)
	}
	n := sg.initN + 1
	if err := writeFileSync(filepath.Join(sg.dir, initName(n)), buf.Bytes()); err != nil {
		return err
	}
	sg.initN, sg.params = n, p
	sg.bytes += int64(buf.Len())
	return nil
}

func initName(n int) string { return "init-" + strconv.Itoa(n) + ".mp4" }

// finish writes what is pending and closes the playlist (EXT-X-ENDLIST).
func (sg *segmenter) finish() error {
	if err := sg.flushAll(); err != nil {
		return err
	}
	sg.finished = true
	return sg.writePlaylist()
}

func (sg *segmenter) writePlaylist() error {
	return writeFileSync(filepath.Join(sg.dir, playlistName), []byte(renderPlaylist(sg.entries, sg.finished, nil)))
}

const playlistName = "index.m3u8"

// renderPlaylist writes the media playlist; sign, if set, rewrites each URI
// (signed URLs for private rooms).
func renderPlaylist(entries []playlistEntry, ended bool, sign func(string) string) string {
	if sign == nil {
		sign = func(s string) string { return s }
	}
	target := 1
	for _, e := range entries {
		target = max(target, int(math.Ceil(e.dur.Seconds())))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", target)
	if ended {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	cur := 0
	for _, e := range entries {
		if e.init != cur {
			if cur != 0 {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", sign(initName(e.init)))
			cur = e.init
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", e.dur.Seconds(), sign(e.name))
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}

// parsePlaylist reads back what renderPlaylist wrote (recovery, serving).
func parsePlaylist(text string) (entries []playlistEntry, ended bool) {
	cur := 0
	var dur, start time.Duration
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:URI=\"init-"):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "#EXT-X-MAP:URI=\"init-"), ".mp4\""))
			if err == nil {
				cur = n
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
			if err == nil {
				dur = time.Duration(f * float64(time.Second))
			}
		case line == "#EXT-X-ENDLIST":
			ended = true
		case strings.HasPrefix(line, "seg-"):
			entries = append(entries, playlistEntry{init: cur, name: line, dur: dur, start: start})
			start += dur
		}
	}
	return entries, ended
}

// writeFileSync writes name atomically and durably: a temporary file,
// fsync, rename, fsync of the directory.
func writeFileSync(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
