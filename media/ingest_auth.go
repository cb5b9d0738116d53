package media

import "context"

// IngestAuthorizer decides who may publish over the access-unit ingests
// (RTMP, SRT); it knows nothing about the protocol. web.IngestAuth
// implements it with the room store and room.Access (ActPublish), as
// RTSPAuth does for RTSP. An error wrapping ErrRoomNotFound means no such
// room (or no room has that key); any other error is a refused credential.
type IngestAuthorizer interface {
	// AuthorizePublish checks key (a stream key or host token) for roomID
	// and returns the publisher's host ID: the same host reconnecting
	// replaces its previous stream, another host is refused.
	AuthorizePublish(ctx context.Context, roomID, key string) (hostID string, err error)
	// FindPublish finds the room whose stream key is key (OBS's "Custom"
	// form: server rtmp://host/live, stream key = the room's key).
	FindPublish(ctx context.Context, key string) (roomID, hostID string, err error)
}
