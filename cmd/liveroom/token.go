package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"liveroom/room"
)

// token prints a signed token, using the same secret the server would use
// (config file, env, or the data directory's generated secrets).
func token(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	dataDir := fs.String("data-dir", "", "data directory (for a generated secret)")
	roomID := fs.String("room", "", "room id, or * for every room")
	roleName := fs.String("role", "viewer", "viewer, moderator, host or admin")
	sub := fs.String("sub", "", "user id (the token's sub)")
	name := fs.String("name", "", "display name")
	ttl := fs.Duration("ttl", 24*time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *roomID == "" || *sub == "" {
		return errors.New("--room and --sub are required")
	}
	if room.ReservedSubject(*sub) {
		return fmt.Errorf("--sub: %q is reserved for the server's own identities (admin, host:…, edge:…, guest-…, rtsp-pull)", *sub)
	}
	if *roomID != "*" && !room.ValidID(*roomID) {
		return fmt.Errorf("--room: %q is not a valid room id", *roomID)
	}
	role, err := room.ParseRole(*roleName)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	cfg, err := readConfig(*cfgPath, getenv, func(c *Config) {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
	})
	if err != nil {
		return err
	}
	if _, _, err := room.LoadSecrets(&cfg.Auth, cfg.DataDir); err != nil {
		return err
	}
	auth, err := room.NewAuth(cfg.Auth)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(room.Identity{ID: *sub, Name: *name, Role: role, Room: *roomID}, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
