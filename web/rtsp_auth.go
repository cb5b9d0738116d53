package web

import (
	"context"
	"errors"
	"fmt"

	"liveroom/media"
	"liveroom/room"
)

// RTSPAuth answers the media RTSP server's questions with the room store
// and the access policy (room.Access), as requireHost and mayWatch do for
// WHIP and WHEP: publishing needs the room's stream key or a host token (as
// the RTSP password or ?key=), reading a private room needs a token for it.
// A later ingest (RTMP, SRT) asks the same ActPublish question.
type RTSPAuth struct {
	access *room.Access
	rooms  room.Store
}

var _ media.RTSPAuthorizer = (*RTSPAuth)(nil)

// NewRTSPAuth authorizes RTSP clients against rooms and auth.
func NewRTSPAuth(auth *room.Auth, rooms room.Store) *RTSPAuth {
	return &RTSPAuth{access: room.NewAccess(auth, nil), rooms: rooms}
}

func (a *RTSPAuth) room(ctx context.Context, roomID string) (room.Room, error) {
	if !room.ValidID(roomID) {
		return room.Room{}, fmt.Errorf("%w: %q", media.ErrRoomNotFound, roomID)
	}
	rm, err := a.rooms.Get(ctx, roomID)
	if errors.Is(err, room.ErrNotFound) {
		return room.Room{}, fmt.Errorf("%w: %q", media.ErrRoomNotFound, roomID)
	}
	return rm, err
}

// rtspSecret is what the client presented: ?key= first, else the password.
func rtspSecret(c media.RTSPCredentials) string {
	if c.Key != "" {
		return c.Key
	}
	return c.Password
}

func (a *RTSPAuth) AuthorizePublish(ctx context.Context, roomID string, c media.RTSPCredentials) (string, error) {
	rm, err := a.room(ctx, roomID)
	if err != nil {
		return "", err
	}
	id, err := a.access.Check(room.AccessRequest{Action: room.ActPublish, Room: &rm, Credential: rtspSecret(c)})
	if err != nil {
		return "", err
	}
	return id.ID, nil
}

func (a *RTSPAuth) AuthorizeRead(ctx context.Context, roomID string, c media.RTSPCredentials) error {
	rm, err := a.room(ctx, roomID)
	if err != nil {
		return err
	}
	_, err = a.access.Check(room.AccessRequest{Action: room.ActWatch, Room: &rm, Credential: rtspSecret(c)})
	return err
}
