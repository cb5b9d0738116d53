package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"liveroom/media"
	"liveroom/record"
	"liveroom/room"
	"liveroom/web"
)

// buildRecorder wires the show recorder: a reader of the SFU's media seam,
// told of live rooms by the SFU's live hook and of commerce and chat events
// by the hub; record.stopped goes to the room's hosts.
func (n *node) buildRecorder() error {
	// One Opus → AAC stream per room, shared by every output that needs
	// AAC (the recorder; HLS takes the same n.aac).
	n.aac = media.NewAACStreams(n.sfu.OpenReader)
	rec, err := record.New(n.cfg.Record, record.Deps{
		Media: n.sfu, Rooms: n.rooms, Log: n.log, AAC: n.aac,
		// Pins, sales and chat of every node reach the show via the bus.
		Events: n.hub.ObserveRoom, Manifest: n.back.shows, Node: n.cfg.Node.ID,
		Notify: func(ctx context.Context, scope string, ev room.Event) error {
			return n.hub.SendRole(ctx, scope, room.RoleHost, ev)
		},
	})
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	n.rec = rec
	return nil
}

// showLibrary is what the web serves: this node's disk, or in a cluster
// the Redis manifest with files fetched from the node holding them (the
// edge pulls' cluster-authenticated node-to-node path).
func (n *node) showLibrary() web.ShowLibrary {
	if n.back.shows == nil {
		return n.rec.Library()
	}
	fetch := web.NewEdgeClient(n.cfg.Node.ID, n.back.secret, n.back.registry).ReplayFile
	return record.NewClusterLibrary(n.rec.Library(), n.back.shows, n.cfg.Node.ID, fetch)
}

// replaySecret signs private rooms' replay URLs; derived from the JWT
// secret so that every node of a cluster agrees.
func replaySecret(jwtSecret string) []byte {
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("liveroom replay urls"))
	return m.Sum(nil)
}
