package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"liveroom/room"
)

const demoRoom = "demo"

// seedDemo creates the demo room if it is missing and prints ready-to-open
// URLs with tokens for the studio, a viewer and a moderator.
func seedDemo(ctx context.Context, cfg Config, rooms room.Store, auth *room.Auth, addr net.Addr, out io.Writer) error {
	rm, err := rooms.Get(ctx, demoRoom)
	if errors.Is(err, room.ErrNotFound) {
		rm, err = room.NewRoom(room.Room{ID: demoRoom, Title: "Demo: the spring edit, live", GuestChat: false}, time.Now())
		if err != nil {
			return err
		}
		rm, err = rooms.Create(ctx, rm)
	}
	if err != nil {
		return err
	}
	const ttl = 7 * 24 * time.Hour
	mint := func(sub, name string, role room.Role) string {
		t, err := auth.Mint(room.Identity{ID: sub, Name: name, Role: role, Room: rm.ID}, ttl)
		if err != nil {
			return "(error: " + err.Error() + ")"
		}
		return t
	}
	base := baseURL(cfg, addr)
	fmt.Fprintf(out, `
liveroom is running in dev mode. Demo room %q:

  studio (host):  %s/studio/%s#token=%s
  viewer:         %s/r/%s#token=%s
  guest viewer:   %s/r/%s
  moderator:      %s/mod/%s#token=%s

  OBS 30+ (Settings > Stream > Service: WHIP):
    server:        %s/whip/%s
    bearer token:  %s

  admin API key:  %s
  lobby:          %s/

`, rm.ID,
		base, rm.ID, mint("host-demo", "Demo Host", room.RoleHost),
		base, rm.ID, mint("viewer-demo", "Dana", room.RoleViewer),
		base, rm.ID,
		base, rm.ID, mint("mod-demo", "Mo (moderator)", room.RoleModerator),
		base, rm.ID, rm.StreamKey,
		cfg.Auth.AdminKey, base)
	return nil
}

// baseURL is http.public_url, or the listen address with a host a browser
// on this machine can open.
func baseURL(cfg Config, addr net.Addr) string {
	if cfg.HTTP.PublicURL != "" {
		return strings.TrimRight(cfg.HTTP.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
