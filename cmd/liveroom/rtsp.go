package main

import (
	"context"
	"errors"
	"fmt"

	"liveroom/media"
	"liveroom/room"
)

// rtspAuth answers the media RTSP server's questions with the room store and
// room.Auth, the way the web layer does for WHIP/WHEP: publishing needs the
// room's stream key or a host token (as the RTSP password or ?key=),
// reading a private room needs a token for it.
type rtspAuth struct {
	auth  *room.Auth
	rooms room.Store
}

var _ media.RTSPAuthorizer = (*rtspAuth)(nil)

func newRTSPAuth(auth *room.Auth, rooms room.Store) *rtspAuth {
	return &rtspAuth{auth: auth, rooms: rooms}
}

func (a *rtspAuth) room(ctx context.Context, roomID string) (room.Room, error) {
	if !room.ValidID(roomID) {
		return room.Room{}, fmt.Errorf("%w: %q", media.ErrRoomNotFound, roomID)
	}
	rm, err := a.rooms.Get(ctx, roomID)
	if errors.Is(err, room.ErrNotFound) {
		return room.Room{}, fmt.Errorf("%w: %q", media.ErrRoomNotFound, roomID)
	}
	return rm, err
}

func rtspSecret(c media.RTSPCredentials) string {
	if c.Key != "" {
		return c.Key
	}
	return c.Password
}

func (a *rtspAuth) AuthorizePublish(ctx context.Context, roomID string, c media.RTSPCredentials) (string, error) {
	rm, err := a.room(ctx, roomID)
	if err != nil {
		return "", err
	}
	id, err := a.auth.Bearer(rtspSecret(c), rm.ID, rm.StreamKey)
	if err != nil {
		return "", err
	}
	if !id.Role.AtLeast(room.RoleHost) {
		return "", fmt.Errorf("%w: only the room's host may publish", room.ErrUnauthorized)
	}
	return id.ID, nil
}

func (a *rtspAuth) AuthorizeRead(ctx context.Context, roomID string, c media.RTSPCredentials) error {
	rm, err := a.room(ctx, roomID)
	if err != nil {
		return err
	}
	secret := rtspSecret(c)
	if secret == "" {
		if rm.Private {
			return fmt.Errorf("%w: this room is private", room.ErrUnauthorized)
		}
		return nil
	}
	_, err = a.auth.Bearer(secret, rm.ID, rm.StreamKey)
	return err
}
