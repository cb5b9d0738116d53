package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"liveroom/room"
)

func noEnv(string) string { return "" }

// The shipped example files must load and validate, so the docs stay true.
func TestShippedConfigsValidate(t *testing.T) {
	for _, f := range []string{"liveroom.yaml", "dev.yaml"} {
		t.Run(f, func(t *testing.T) {
			cfg, err := parseServeFlags([]string{"--config", filepath.Join("..", "..", "configs", f)}, os.Stderr, noEnv)
			if err != nil {
				t.Fatalf("got %v, want the shipped config to validate", err)
			}
			if cfg.HTTP.Listen == "" || cfg.WebRTC.Port == 0 {
				t.Fatalf("got %+v, want listen address and webrtc port set", cfg)
			}
		})
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "colour: red\n", "colour"},
		{"unknown nested key", "http:\n  lisen: ':1'\n", "lisen"},
		{"bad listen", "http:\n  listen: 'nope'\n", "http.listen"},
		{"bad webrtc port", "webrtc:\n  port: 70000\n", "webrtc.port"},
		{"odd rtsp udp port", "rtsp:\n  udp_port: 8001\n", "rtsp.udp_port"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"bad redis url", "redis:\n  url: 'localhost:6379'\n", "redis.url"},
		{"bad origin", "http:\n  allowed_origins: ['shop']\n", "http.allowed_origins"},
		{"bad advertise url", "node:\n  advertise_url: 'node-b:8080'\n", "node.advertise_url"},
		{"short cluster secret", "node:\n  cluster_secret: 'short'\n", "node.cluster_secret"},
		{"bad trusted proxy", "http:\n  trusted_proxies: ['not-an-address']\n", "http.trusted_proxies"},
		{"negative drain wait", "http:\n  drain_wait: -1s\n", "http.drain_wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := parseServeFlags([]string{"--config", path}, os.Stderr, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestFlagsOverrideEnvOverrideFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(path, []byte("http:\n  listen: ':1111'\ndata_dir: fromfile\nauth:\n  admin_key: file-admin-key-000000\n"), 0o600)
	env := map[string]string{"LIVEROOM_HTTP": ":2222", "LIVEROOM_DATA_DIR": "fromenv", "LIVEROOM_ADMIN_KEY": "env-admin-key-0000000",
		"LIVEROOM_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1", "LIVEROOM_WEBRTC_LISTEN_IP": "127.0.0.1",
		"LIVEROOM_WEBRTC_NAT_1TO1_IPS": "203.0.113.7,2001:db8::7"}
	cfg, err := parseServeFlags([]string{"--config", path, "--http", ":3333", "--webrtc-port", "9999"}, os.Stderr, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != ":3333" || cfg.DataDir != "fromenv" || cfg.Auth.AdminKey != "env-admin-key-0000000" || cfg.WebRTC.Port != 9999 {
		t.Fatalf("got listen=%s data=%s admin=%s port=%d", cfg.HTTP.Listen, cfg.DataDir, cfg.Auth.AdminKey, cfg.WebRTC.Port)
	}
	if got := strings.Join(cfg.HTTP.TrustedProxies, " "); got != "10.0.0.0/8 127.0.0.1" {
		t.Fatalf("trusted proxies from LIVEROOM_TRUSTED_PROXIES: got %q", got)
	}
	if got := strings.Join(cfg.WebRTC.NAT1To1IPs, " "); cfg.WebRTC.ListenIP != "127.0.0.1" || got != "203.0.113.7 2001:db8::7" {
		t.Fatalf("webrtc from the environment: listen_ip %q, nat_1to1_ips %q", cfg.WebRTC.ListenIP, got)
	}
}

func TestSecretsGeneratedOnceAndTokenCommand(t *testing.T) {
	dir := t.TempDir()
	var a, b room.AuthConfig
	if _, gen, err := room.LoadSecrets(&a, dir); err != nil || !gen {
		t.Fatalf("first: gen=%v err=%v, want generated", gen, err)
	}
	if _, _, err := room.LoadSecrets(&b, dir); err != nil || a != b {
		t.Fatalf("second: got %+v, want the same secrets %+v", b, a)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"token", "--data-dir", dir, "--room", "demo", "--role", "host", "--sub", "h1", "--name", "Hana"}, &out, &errOut, noEnv)
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut.String())
	}
	auth, _ := room.NewAuth(a)
	id, err := auth.Verify(strings.TrimSpace(out.String()), "demo")
	if err != nil || id.ID != "h1" || id.Role != room.RoleHost || id.Name != "Hana" {
		t.Fatalf("printed token: got %+v %v", id, err)
	}
	if code := run(context.Background(), []string{"token", "--data-dir", dir, "--room", "demo", "--role", "owner", "--sub", "x"}, &out, &errOut, noEnv); code == 0 {
		t.Fatal("token with role owner: got exit 0, want an error")
	}
}

// configs/liveroom.yaml documents every key: each key of the defaults must
// appear in it, so a new setting cannot go undocumented.
func TestExampleConfigListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "liveroom.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	c := defaultConfig()
	c.setDefaults()
	db, _ := yaml.Marshal(c)
	var defaults map[string]any
	_ = yaml.Unmarshal(db, &defaults)
	for _, key := range keyPaths("", defaults) {
		if !hasPath(file, key) {
			t.Errorf("configs/liveroom.yaml does not document %s", key)
		}
	}
}

func keyPaths(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		p := prefix + k
		if sub, ok := v.(map[string]any); ok {
			out = append(out, keyPaths(p+".", sub)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func hasPath(m map[string]any, path string) bool {
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		mm, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = mm[p]; !ok {
			return false
		}
	}
	return true
}

func TestAdvertiseURL(t *testing.T) {
	cases := []struct {
		configured, listen, want string
	}{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"", "[::]:8080", "http://127.0.0.1:8080"},
		{"", "10.0.0.5:9000", "http://10.0.0.5:9000"},
		{"https://node-b.internal:8443/", "0.0.0.0:8080", "https://node-b.internal:8443"},
	}
	for _, c := range cases {
		addr, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := (room.NodeConfig{AdvertiseURL: c.configured}).Advertise(addr); got != c.want {
			t.Errorf("Advertise(%q, %s) = %q, want %q", c.configured, c.listen, got, c.want)
		}
	}
}
