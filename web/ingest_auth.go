package web

import (
	"context"
	"crypto/subtle"
	"fmt"

	"liveroom/media"
	"liveroom/room"
)

// IngestAuth answers the access-unit ingests' (RTMP, SRT) questions with
// the room store and the access policy, like RTSPAuth: publishing needs the
// room's stream key or a host token (ActPublish).
type IngestAuth struct{ rtsp *RTSPAuth }

var _ media.IngestAuthorizer = (*IngestAuth)(nil)

// NewIngestAuth authorizes ingest publishers against rooms and auth.
func NewIngestAuth(auth *room.Auth, rooms room.Store) *IngestAuth {
	return &IngestAuth{rtsp: NewRTSPAuth(auth, rooms)}
}

func (a *IngestAuth) AuthorizePublish(ctx context.Context, roomID, key string) (string, error) {
	return a.rtsp.AuthorizePublish(ctx, roomID, media.RTSPCredentials{Key: key})
}

// FindPublish finds the room whose stream key is key. Rooms are few per
// node's store (a list, not an index); a token names no single room here,
// so only a stream key works in this form.
func (a *IngestAuth) FindPublish(ctx context.Context, key string) (string, string, error) {
	if key == "" {
		return "", "", fmt.Errorf("%w: no stream key", media.ErrRoomNotFound)
	}
	rooms, err := a.rtsp.rooms.List(ctx)
	if err != nil {
		return "", "", err
	}
	for _, rm := range rooms {
		if rm.StreamKey != "" && subtle.ConstantTimeCompare([]byte(rm.StreamKey), []byte(key)) == 1 {
			id, err := a.rtsp.access.Check(room.AccessRequest{Action: room.ActPublish, Room: &rm, Credential: key})
			if err != nil {
				return "", "", err
			}
			return rm.ID, id.ID, nil
		}
	}
	return "", "", fmt.Errorf("%w: no room has this stream key", media.ErrRoomNotFound)
}
