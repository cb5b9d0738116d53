package web

import (
	"context"
	"errors"
	"fmt"

	"liveroom/media"
	"liveroom/room"
)

// RTSPAuth answers the media RTSP server's questions with the room store
// and room.Auth, as requireHost and mayWatch do for WHIP and WHEP (which is
// why it lives here): publishing needs the room's stream key or a host
// token (as the RTSP password or ?key=), reading a private room needs a
// token for it.
type RTSPAuth struct {
	auth  *room.Auth
	rooms room.Store
}

var _ media.RTSPAuthorizer = (*RTSPAuth)(nil)

// NewRTSPAuth authorizes RTSP clients against rooms and auth.
func NewRTSPAuth(auth *room.Auth, rooms room.Store) *RTSPAuth {
	return &RTSPAuth{auth: auth, rooms: rooms}
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
	id, err := a.auth.Bearer(rtspSecret(c), rm.ID, rm.StreamKey)
	if err != nil {
		return "", err
	}
	if !id.Role.AtLeast(room.RoleHost) {
		return "", fmt.Errorf("%w: only the room's host may publish", room.ErrUnauthorized)
	}
	return id.ID, nil
}

func (a *RTSPAuth) AuthorizeRead(ctx context.Context, roomID string, c media.RTSPCredentials) error {
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
