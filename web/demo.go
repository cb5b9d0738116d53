package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"liveroom/cart"
	"liveroom/room"
)

const demoRoom = "demo"

// SeedDemo (dev mode) creates the demo room and its catalog if they are
// missing and prints ready-to-open URLs of this server's pages, with
// tokens, for the studio, a viewer and a moderator; addr is the HTTP
// listener's.
func (s *Server) SeedDemo(ctx context.Context, addr net.Addr, adminKey string, out io.Writer) error {
	rooms, auth := s.deps.Rooms, s.deps.Auth
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
	base := s.baseURL(addr)
	if err := seedProducts(ctx, s.deps.Catalog, rm.ID); err != nil {
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
	fmt.Fprintf(out, `
liveroom is running in dev mode. Demo room %q:

  studio (host):  %s/studio/%s#token=%s
  viewer:         %s/r/%s#token=%s
  guest viewer:   %s/r/%s
  moderator:      %s/mod/%s#token=%s

  OBS 30+ (Settings > Stream > Service: WHIP):
    server:        %s/whip/%s
    bearer token:  %s
  OBS "Custom..." / Larix / PRISM (RTMP, B-frames off):
    server:        %s
    stream key:    %s
  hardware encoder / Larix (SRT, caller mode, B-frames off):
    %s
  ffmpeg / IP camera (RTSP):
    %s

  admin API key:  %s
  lobby:          %s/

`, rm.ID,
		base, rm.ID, mint("host-demo", "Demo Host", room.RoleHost),
		base, rm.ID, mint("viewer-demo", "Dana", room.RoleViewer),
		base, rm.ID,
		base, rm.ID, mint("mod-demo", "Mo (moderator)", room.RoleModerator),
		base, rm.ID, rm.StreamKey,
		orOff(s.rtmpURL(demoHost(base)), "RTMP"), rm.StreamKey,
		orOff(s.srtURL(demoHost(base), rm.ID, rm.StreamKey), "SRT"),
		s.rtspURL(base, rm.ID, rm.StreamKey),
		adminKey, base)
	return nil
}

// demoProducts is the demo room's catalog; images are served by this node
// (same-origin paths, so the pages work under any host name).
var demoProducts = []cart.Product{
	{SKU: "linen-shirt", Title: "Washed linen shirt, sand", PriceCents: 5900, Currency: "EUR", Stock: 40},
	{SKU: "canvas-tote", Title: "Heavy canvas tote", PriceCents: 2400, Currency: "EUR", Stock: 120},
	{SKU: "ceramic-mug", Title: "Hand-thrown ceramic mug", PriceCents: 1800, Currency: "EUR", Stock: 25},
}

// seedProducts adds the demo catalog to a room that has none yet.
func seedProducts(ctx context.Context, store Catalog, roomID string) error {
	if store == nil {
		return nil
	}
	have, err := store.Products(ctx, roomID)
	if err != nil || len(have) > 0 {
		return err
	}
	for _, p := range demoProducts {
		p.ImageURL = "/static/demo/" + p.SKU + ".svg"
		if _, err := store.PutProduct(ctx, roomID, p); err != nil {
			return fmt.Errorf("seed product %s: %w", p.SKU, err)
		}
	}
	return nil
}

// rtspURL is where ffmpeg publishes to the room, key as the password.
func (s *Server) rtspURL(base, roomID, key string) string {
	if s.deps.RTSPPort == 0 {
		return "(RTSP is off)"
	}
	port := strconv.Itoa(s.deps.RTSPPort)
	return "rtsp://host:" + key + "@" + net.JoinHostPort(demoHost(base), port) + "/" + roomID
}

// demoHost is the host name in a base URL, without scheme or port.
func demoHost(base string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host
}

// orOff is url, or a note that the listener is off.
func orOff(url, what string) string {
	if url == "" {
		return "(" + what + " is off)"
	}
	return url
}

// baseURL is http.public_url, or the listen address with a host a browser
// on this machine can open.
func (s *Server) baseURL(addr net.Addr) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
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
