package media

import (
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
)

// Simulcast: a room's video is up to maxLayers *layers*, each its own
// forwarder (room.layers). Slot 0 is the room's default layer: the only one
// of a single-layer source, the top layer of a simulcast one. Readers
// (reader_layer.go) and edge pulls (viewer_layer.go edgeLayer) take the
// highest layer being sent, so that a browser dropping its top layer does
// not freeze the recording, HLS or another node's viewers. Each layer forwarder rewrites and stamps its own
// input exactly as a single-layer room does (its own sequence space, its
// own timestamps mapped onto the room clock from its own sender reports), so
// viewers can move between layers with the per-viewer offsets in
// viewer_layer.go. A layer the server makes itself (a transcoded low layer
// for a single-layer RTMP host) is one more source writing into a free slot
// through room.attachLayer; nothing on the viewer side changes.

// maxLayers bounds the layers a room forwards (OBS sends up to 4).
const maxLayers = 4

// layerKeyframer is a source with one keyframe stream per layer (a WHIP
// simulcast publisher): a PLI names the layer's SSRC.
type layerKeyframer interface {
	requestLayerKeyframe(slot int)
}

// rankRIDs orders a publisher's rids top layer first. Known naming schemes
// are ranked by meaning (q/h/f, l/m/h, low/mid/high, numbers ascending = low
// to high); anything else keeps the offer's order, read as lowest first
// (Chrome and OBS list encodings from the smallest). Layer selection orders
// layers by measured bitrate anyway; this only decides which layer is the
// room's default (slot 0).
func rankRIDs(rids []string) []string {
	schemes := [][]string{{"q", "h", "f"}, {"l", "m", "h"}, {"low", "mid", "high"}, {"low", "medium", "high"}}
	for _, sc := range schemes {
		if all(rids, func(r string) bool { return slices.Contains(sc, strings.ToLower(r)) }) {
			out := slices.Clone(rids)
			slices.SortStableFunc(out, func(a, b string) int {
				return slices.Index(sc, strings.ToLower(b)) - slices.Index(sc, strings.ToLower(a))
			})
			return out
		}
	}
	if all(rids, func(r string) bool { _, err := strconv.Atoi(r); return err == nil }) {
		out := slices.Clone(rids)
		slices.SortStableFunc(out, func(a, b string) int {
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return y - x
		})
		return out
	}
	out := slices.Clone(rids)
	slices.Reverse(out)
	return out
}

func all(s []string, f func(string) bool) bool {
	for _, x := range s {
		if !f(x) {
			return false
		}
	}
	return len(s) > 0
}

// validRID: RFC 8851 rid-id is alphanumeric (plus - and _); short, since it
// is shown to hosts.
func validRID(r string) bool {
	if r == "" || len(r) > 16 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// offerLayers maps the rids a publisher's offer sends in its video section
// (a=rid:<id> send) to layer slots, top layer first; nil for a single-layer
// offer. Invalid rids and those beyond maxLayers get no slot (their packets
// are read and dropped).
func offerLayers(offer string) map[string]int {
	var d sdp.SessionDescription
	if d.UnmarshalString(offer) != nil {
		return nil
	}
	var rids []string
	for _, md := range d.MediaDescriptions {
		if md == nil || md.MediaName.Media != "video" {
			continue
		}
		for _, a := range md.Attributes {
			if a.Key != "rid" {
				continue
			}
			id, dir, _ := strings.Cut(a.Value, " ")
			dir, _, _ = strings.Cut(dir, " ")
			if dir == "send" && validRID(id) && !slices.Contains(rids, id) && len(rids) < maxLayers {
				rids = append(rids, id)
			}
		}
		break // one video section is forwarded
	}
	if len(rids) == 0 {
		return nil
	}
	slots := map[string]int{}
	for i, r := range rankRIDs(rids) {
		slots[r] = i
	}
	return slots
}

// layerRate measures a layer forwarder's input bitrate over ~1 s windows.
// add runs under the forwarder's lock; the readers (layer selection) load
// the published values.
type layerRate struct {
	start time.Time
	bytes int
	bps   atomic.Int64 // smoothed; 0 = not measured yet
	last  atomic.Int64 // unix ns of the last packet
	rid   atomic.Pointer[string]
}

const rateWindow = time.Second

func (r *layerRate) add(now time.Time, n int) {
	r.bytes += n + 12            // with the RTP header
	r.last.Store(now.UnixNano()) // per packet: readers tell a stopped layer in readerStall
	if r.start.IsZero() {
		r.start = now
	}
	if el := now.Sub(r.start); el >= rateWindow {
		bps := int64(float64(r.bytes*8) / el.Seconds())
		if old := r.bps.Load(); old > 0 {
			bps = (old + bps) / 2
		}
		r.bps.Store(bps)
		r.start, r.bytes = now, 0
	}
}

// activeFor is how long a layer may go without packets and still be
// offered to viewers (browsers stop a layer under CPU or bandwidth limits).
const activeFor = rateWindow + 1500*time.Millisecond

// layerInfo is one selectable layer as layer selection sees it.
type layerInfo struct {
	slot int
	bps  int64
}

// activeLayers returns the room's layers that carry video now, highest
// bitrate first (a layer not yet measured counts as its slot's rank).
func (r *room) activeLayers(now time.Time, out []layerInfo) []layerInfo {
	out = out[:0]
	for i, f := range r.layers {
		if f.cur.Load() == nil {
			continue
		}
		last := f.rate.last.Load()
		if last == 0 || now.Sub(time.Unix(0, last)) > activeFor {
			continue
		}
		out = append(out, layerInfo{slot: i, bps: f.rate.bps.Load()})
	}
	slices.SortStableFunc(out, func(a, b layerInfo) int {
		switch {
		case a.bps == 0 || b.bps == 0:
			return a.slot - b.slot
		case a.bps > b.bps:
			return -1
		case a.bps < b.bps:
			return 1
		}
		return 0
	})
	return out
}

// attachLayer gives src an ingest on video layer slot (simulcast), like
// attach does for slot 0.
func (r *room) attachLayer(src source, slot, codec int, rid string) *ingest {
	if slot == 0 {
		in := r.attach(src, kindVideo, codec)
		if in != nil {
			r.layers[0].rate.rid.Store(&rid)
		}
		return in
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != src || slot < 0 || slot >= maxLayers {
		return nil
	}
	f := r.layers[slot]
	if cur := f.cur.Load(); cur != nil && cur.src == src {
		return nil
	}
	in := &ingest{f: f, src: src, codec: codec}
	f.setIngest(in)
	f.rate.rid.Store(&rid)
	return in
}

// extraLayers are the video forwarders beyond the default one.
func (r *room) extraLayers() []*forwarder { return r.layers[1:] }

// LayerStat is one layer of a room as the host's studio shows it.
type LayerStat struct {
	RID     string `json:"rid"`     // "" for a single-layer source
	Kbps    int64  `json:"kbps"`    // measured input bitrate
	Viewers int    `json:"viewers"` // viewers receiving this layer now
}

// RoomLayers is what GET /whip/{room}/{session}/layers answers.
type RoomLayers struct {
	Layers []LayerStat `json:"layers"` // active layers, highest bitrate first
	Paused int         `json:"paused"` // viewers whose video is paused (too slow)
}

// Layers reports roomID's active layers and how many viewers are on each.
func (s *SFU) Layers(roomID string) (RoomLayers, error) {
	r, ok := s.lookup(roomID)
	if !ok {
		return RoomLayers{Layers: []LayerStat{}}, nil
	}
	var counts [maxLayers]int
	paused := 0
	for _, v := range *r.viewers.Load() {
		if v.edge || !v.ready.Load() || v.tracks[kindVideo] == nil {
			continue
		}
		switch c := v.cur.Load(); {
		case v.target.Load() < 0 && c < 0:
			paused++
		case c >= 0:
			counts[c]++
		}
	}
	out := RoomLayers{Layers: []LayerStat{}, Paused: paused}
	for _, l := range r.activeLayers(time.Now(), nil) {
		f := r.layers[l.slot]
		rid := ""
		if p := f.rate.rid.Load(); p != nil {
			rid = *p
		}
		out.Layers = append(out.Layers, LayerStat{RID: rid, Kbps: l.bps / 1000, Viewers: counts[l.slot]})
	}
	return out, nil
}
