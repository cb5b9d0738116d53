package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"liveroom/room"
)

// ClusterLibrary is the shows of a cluster: their manifests in Redis
// (Manifest), their files on the nodes that recorded them. Any node
// answers for any show: the list, the product script and chat and the
// playlist come from the manifest; a file this node does not hold is
// fetched from its holder (Remote, over the cluster-authenticated
// node-to-node route).
type ClusterLibrary struct {
	local *Library
	man   Manifest
	node  string
	fetch FetchFunc
}

// FetchFunc GETs a show's file from the node holding it (web.EdgeClient's
// ReplayFile); rangeHdr is the client's Range header, passed on.
type FetchFunc func(ctx context.Context, node, roomID, showID, name, rangeHdr string) (*http.Response, error)

// NewClusterLibrary serves the shows of man, with this node's files in
// local; fetch reaches the other nodes.
func NewClusterLibrary(local *Library, man Manifest, node string, fetch FetchFunc) *ClusterLibrary {
	return &ClusterLibrary{local: local, man: man, node: node, fetch: fetch}
}

// opTimeout bounds a manifest read behind an HTTP request.
const opTimeout = 5 * time.Second

func (c *ClusterLibrary) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Get is a show with its chapters.
func (c *ClusterLibrary) Get(roomID, showID string) (Show, error) {
	if !room.ValidID(roomID) || !ValidShowID(showID) {
		return Show{}, ErrNoShow
	}
	ctx, cancel := c.ctx()
	defer cancel()
	st, segs, err := c.man.Get(ctx, roomID, showID)
	if err != nil {
		return Show{}, err
	}
	return c.show(ctx, st, segs)
}

func (c *ClusterLibrary) show(ctx context.Context, st ShowState, segs []SegmentRef) (Show, error) {
	script, err := c.log(ctx, st.Room, st.ID, scriptName)
	if err != nil {
		return Show{}, err
	}
	m := st.Meta
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		m.DurationS = (last.Start + last.Dur).Seconds()
	}
	return Show{Meta: m, Ended: m.EndedAt != nil, Chapters: chapters(script)}, nil
}

// List is a room's shows, newest first.
func (c *ClusterLibrary) List(roomID string) ([]Show, error) {
	if !room.ValidID(roomID) {
		return nil, ErrNoShow
	}
	ctx, cancel := c.ctx()
	defer cancel()
	sts, err := c.man.List(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := []Show{}
	for _, st := range sts {
		if s, err := c.show(ctx, st, nil); err == nil {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Show) int { return b.StartedAt.Compare(a.StartedAt) })
	return out, nil
}

func (c *ClusterLibrary) log(ctx context.Context, roomID, showID, name string) ([]Entry, error) {
	lines, err := c.man.Log(ctx, roomID, showID, name)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(lines))
	for _, l := range lines {
		var e Entry
		if json.Unmarshal(l, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Script is a show's product script, from every node that recorded it.
func (c *ClusterLibrary) Script(roomID, showID string) ([]Entry, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	return c.log(ctx, roomID, showID, scriptName)
}

// Chat is a show's chat as replay shows it (moderation applied).
func (c *ClusterLibrary) Chat(roomID, showID string) ([]Entry, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	all, err := c.log(ctx, roomID, showID, chatName)
	if err != nil {
		return nil, err
	}
	return replayChat(all), nil
}

// Delete forgets the show cluster-wide (no node serves it any more) and
// removes this node's files; the other holders remove theirs at their next
// sweep (record.sweep_every), from the manifest's tombstone.
func (c *ClusterLibrary) Delete(roomID, showID string) error {
	if !room.ValidID(roomID) || !ValidShowID(showID) {
		return ErrNoShow
	}
	ctx, cancel := c.ctx()
	defer cancel()
	if _, _, err := c.man.Get(ctx, roomID, showID); err != nil {
		return err
	}
	if err := c.man.Delete(ctx, roomID, showID); err != nil {
		return err
	}
	if err := c.local.Delete(roomID, showID); err != nil && !errors.Is(err, ErrNoShow) {
		return err
	}
	return nil
}

// Playlist is rendered from the manifest: every segment of the show, on
// whichever node holds it (the names are relative, served by any node).
func (c *ClusterLibrary) Playlist(roomID, showID string, sign func(string) string) (string, error) {
	if !room.ValidID(roomID) || !ValidShowID(showID) {
		return "", ErrNoShow
	}
	ctx, cancel := c.ctx()
	defer cancel()
	st, segs, err := c.man.Get(ctx, roomID, showID)
	if err != nil {
		return "", err
	}
	return renderPlaylist(refsToEntries(segs), st.EndedAt != nil, sign), nil
}

// File opens one of the show's files if this node holds it.
func (c *ClusterLibrary) File(roomID, showID, name string) (*os.File, error) {
	return c.local.File(roomID, showID, name)
}

// Holder is the node holding a show's init or segment, from the manifest.
func (c *ClusterLibrary) Holder(ctx context.Context, roomID, showID, name string) (string, error) {
	if !room.ValidID(roomID) || !ValidShowID(showID) || !fileNames.MatchString(name) {
		return "", ErrNoShow
	}
	st, segs, err := c.man.Get(ctx, roomID, showID)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(name, "init-") {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "init-"), ".mp4"))
		if err != nil || st.Inits[n] == "" {
			return "", ErrNoShow
		}
		return st.Inits[n], nil
	}
	for _, s := range segs {
		if s.Name == name {
			return s.Node, nil
		}
	}
	return "", ErrNoShow
}

// Remote fetches a file this node does not hold from its holder;
// ErrNoShow when no other node has it.
func (c *ClusterLibrary) Remote(ctx context.Context, roomID, showID, name, rangeHdr string) (*http.Response, error) {
	node, err := c.Holder(ctx, roomID, showID, name)
	if err != nil {
		return nil, err
	}
	if node == c.node || c.fetch == nil {
		return nil, ErrNoShow // ours, yet not on disk: gone
	}
	resp, err := c.fetch(ctx, node, roomID, showID, name, rangeHdr)
	if err != nil {
		return nil, fmt.Errorf("show file from node %s: %w", node, err)
	}
	return resp, nil
}
