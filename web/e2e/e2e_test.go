// Package e2e runs the real liveroom binary against a real Chromium: a host
// goes live from the studio page over WHIP; viewers play over WHEP, chat,
// send hearts, see the pinned product and buy in a flash sale; a moderator
// deletes a message and times the viewer out. Markup in product titles,
// names and chat must never run.
//
// Needs chromium and node (playwright-core is installed from package-lock.json
// on first run). Without them the test skips, unless CI=true, where it fails.
// Screenshots and the server log go to $LIVEROOM_ARTIFACTS (default
// web/e2e/artifacts). LIVEROOM_E2E_BIN runs a prebuilt binary instead of
// building liveroom/cmd/liveroom.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const room = "e2e"

// result is the driver's E2E_RESULT line (see run.mjs).
type result struct {
	OK                   bool        `json:"ok"`
	Step                 string      `json:"step"`
	Error                string      `json:"error"`
	Logs                 []string    `json:"logs"`
	HTTP                 []exchange  `json:"http"`
	TokenStrippedFromURL bool        `json:"tokenStrippedFromURL"`
	Studio               *studioSide `json:"studio"`
	Viewer               *playback   `json:"viewer"`
	Early                *playback   `json:"early"`

	External            []string        `json:"external"`
	XSSTitleShownAsText bool            `json:"xssTitleShownAsText"`
	Pinned              string          `json:"pinned"`
	ChatText            string          `json:"chatText"`
	Likes               int             `json:"likes"`
	SaleClock           []string        `json:"saleClock"`
	HoldText            string          `json:"holdText"`
	OrderID             string          `json:"orderId"`
	OrderTotal          string          `json:"orderTotal"`
	DeletedOnViewer     bool            `json:"deletedOnViewer"`
	ModActsOnHigher     int             `json:"modActsOnHigher"`
	MuteNote            string          `json:"muteNote"`
	Audit               []string        `json:"audit"`
	LobbyCard           string          `json:"lobbyCard"`
	XSS                 map[string]bool `json:"xss"`
}

// Hostile strings: each must reach the screen as text and run nothing.
const (
	xssTitle = `<img src=x onerror="window.__xss=1">`
	xssName  = `<script>window.__xss=1</script>`
)

// screenshots are copied to docs/screenshots for the README.
var screenshots = []string{"viewer-360.png", "viewer-desktop.png", "studio.png", "mod.png"}

type exchange struct {
	Page   string `json:"page"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
}

type studioSide struct {
	State string `json:"state"`
	Codec string `json:"codec"`
}

// checkPlayback: the page showed a live, decoding video.
func checkPlayback(t *testing.T, name string, p *playback) {
	t.Helper()
	if p == nil {
		t.Errorf("%s: no playback result", name)
		return
	}
	t.Logf("%s: %dx%d %s, framesDecoded %d -> %d, totalVideoFrames %d -> %d", name,
		p.VideoWidth, p.VideoHeight, p.Codec, p.FramesBefore, p.FramesAfter, p.TotalVideoFramesBefore, p.TotalVideoFramesAfter)
	if p.VideoWidth <= 0 {
		t.Errorf("%s: videoWidth = %d, want > 0", name, p.VideoWidth)
	}
	if p.FramesAfter <= p.FramesBefore {
		t.Errorf("%s: framesDecoded went %d -> %d over 2s, want it to grow; inbound video %v -> %v", name, p.FramesBefore, p.FramesAfter, p.RTPBefore, p.RTPAfter)
	}
	if p.State != "live" {
		t.Errorf("%s: page state = %q, want live", name, p.State)
	}
}

type playback struct {
	VideoWidth             int `json:"videoWidth"`
	VideoHeight            int `json:"videoHeight"`
	FramesBefore           int `json:"framesBefore"`
	FramesAfter            int `json:"framesAfter"`
	TotalVideoFramesBefore int `json:"totalVideoFramesBefore"`
	TotalVideoFramesAfter  int `json:"totalVideoFramesAfter"`
	// The receiver's counters (packets lost, NACKs, PLIs, frames dropped,
	// freezes), reported when playback stalls.
	RTPBefore map[string]float64 `json:"rtpBefore"`
	RTPAfter  map[string]float64 `json:"rtpAfter"`
	Codec     string             `json:"codec"`
	State     string             `json:"state"`
}

func TestBrowserPublishAndPlay(t *testing.T) {
	chromium, node := browserTools(t)

	artifacts := artifactsDir(t)
	srv := startServer(t, artifacts)

	var created struct {
		ID        string `json:"id"`
		StreamKey string `json:"stream_key"`
	}
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "E2E room"}, http.StatusCreated, &created)
	if created.ID != room || created.StreamKey == "" {
		t.Fatalf("created room = %+v, want id %q and a stream_key", created, room)
	}
	for _, p := range []struct {
		sku, title   string
		price, stock int
		image        string
	}{
		{"linen-shirt", "Washed linen shirt, sand", 5900, 40, srv.base + "/static/demo/linen-shirt.svg"},
		{"canvas-tote", "Heavy canvas tote", 2400, 120, srv.base + "/static/demo/canvas-tote.svg"},
		{"ceramic-mug", "Hand-thrown ceramic mug", 1800, 25, srv.base + "/static/demo/ceramic-mug.svg"},
		{"xss-item", xssTitle, 100, 5, ""},
	} {
		var got map[string]any
		srv.do(t, http.MethodPut, "/api/v1/rooms/"+room+"/products/"+p.sku, map[string]any{
			"title": p.title, "price_cents": p.price, "currency": "EUR", "image_url": p.image, "stock": p.stock,
		}, http.StatusOK, &got)
	}
	mint := func(sub, name, role string) string {
		var minted struct {
			Token string `json:"token"`
		}
		srv.admin(t, "/api/v1/tokens", map[string]any{
			"sub": sub, "name": name, "role": role, "room": room, "ttl": "1h",
		}, 0, &minted)
		if minted.Token == "" {
			t.Fatalf("minted %s token is empty", role)
		}
		return minted.Token
	}
	host := mint("host-1", "Maya · Linen & Co", "host")
	viewer := mint("viewer-1", xssTitle+"Vi", "viewer")
	mod := mint("mod-1", xssName+"Mo", "moderator")
	other := mint("viewer-2", "Dana", "viewer")

	res := runDriver(t, node, chromium, srv.base, artifacts, host, viewer, mod, other)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	for _, x := range res.HTTP {
		t.Logf("browser http: %s %s %s -> %d", x.Page, x.Method, x.Path, x.Status)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	checkResult(t, res)
	checkServerSide(t, srv)
	publishScreenshots(t, artifacts)
}

// checkServerSide asks the server what the browsers did: one order, and the
// moderator's delete and timeout in the audit log.
func checkServerSide(t *testing.T, srv *server) {
	t.Helper()
	var orders struct {
		Orders []struct {
			ID         string `json:"id"`
			User       string `json:"user"`
			TotalCents int64  `json:"total_cents"`
		} `json:"orders"`
	}
	srv.do(t, http.MethodGet, "/api/v1/rooms/"+room+"/orders", nil, http.StatusOK, &orders)
	if len(orders.Orders) != 1 || orders.Orders[0].User != "viewer-1" {
		t.Errorf("orders = %+v, want one order by viewer-1", orders.Orders)
	}
	var log struct {
		Entries []struct {
			Action string `json:"action"`
			UserID string `json:"user_id"`
		} `json:"entries"`
	}
	srv.do(t, http.MethodGet, "/api/v1/rooms/"+room+"/moderation/log", nil, http.StatusOK, &log)
	seen := map[string]bool{}
	for _, e := range log.Entries {
		seen[e.Action] = true
	}
	if !seen["delete"] || !seen["timeout"] {
		t.Errorf("moderation log = %+v, want a delete and a timeout", log.Entries)
	}
}

// publishScreenshots checks the screenshots the README links to and, with
// LIVEROOM_UPDATE_SCREENSHOTS=1, copies them into docs/screenshots (a plain
// test run leaves the tree as it was).
func publishScreenshots(t *testing.T, artifacts string) {
	t.Helper()
	update := os.Getenv("LIVEROOM_UPDATE_SCREENSHOTS") == "1"
	dst := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range screenshots {
		b, err := os.ReadFile(filepath.Join(artifacts, name))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			continue
		}
		if len(b) > 400<<10 {
			t.Errorf("screenshot %s is %d KiB, want at most 400 KiB for the README", name, len(b)>>10)
		}
		if !update {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d KiB)", filepath.Join(artifacts, name), len(b)>>10)
	}
}

func checkResult(t *testing.T, res result) {
	t.Helper()
	for _, l := range res.Logs {
		if strings.Contains(l, " pageerror: ") {
			t.Errorf("uncaught page error: %s", l)
		}
	}
	if !res.TokenStrippedFromURL {
		t.Error("studio left the token in the address bar")
	}
	for page, ran := range res.XSS {
		if ran {
			t.Errorf("%s page: injected markup became live HTML or ran script (window.__xss set)", page)
		}
	}
	if len(res.XSS) < 6 {
		t.Errorf("xss checked on %d pages, want 6", len(res.XSS))
	}
	if len(res.External) > 0 {
		t.Errorf("pages requested other hosts: %v", res.External)
	}
	if !res.XSSTitleShownAsText {
		t.Error("the product titled with markup was not shown as its literal text")
	}
	if !strings.Contains(res.ChatText, "<script>") || !strings.Contains(res.ChatText, "onerror") {
		t.Errorf("chat text = %q, want the markup shown literally", res.ChatText)
	}
	if res.Pinned != "Washed linen shirt, sand" {
		t.Errorf("viewer's pinned product = %q, want the linen shirt", res.Pinned)
	}
	if res.Likes < 5 {
		t.Errorf("studio likes = %d, want >= 5", res.Likes)
	}
	if len(res.SaleClock) != 2 || res.SaleClock[0] == res.SaleClock[1] {
		t.Errorf("sale countdown = %v, want it to tick", res.SaleClock)
	}
	if !strings.HasPrefix(res.HoldText, "Held for ") {
		t.Errorf("bag hold timer = %q, want \"Held for m:ss\"", res.HoldText)
	}
	if res.OrderID == "" || res.OrderTotal == "" {
		t.Errorf("order confirmation: id %q total %q, want both", res.OrderID, res.OrderTotal)
	}
	if res.ModActsOnHigher != 0 {
		t.Errorf("moderator console: %d action buttons on the host's and its own messages, want 0", res.ModActsOnHigher)
	}
	if !strings.Contains(res.MuteNote, "timed out") {
		t.Errorf("viewer mute note = %q, want it to say timed out", res.MuteNote)
	}
	if !strings.Contains(res.LobbyCard, "E2E room") {
		t.Errorf("lobby card = %q, want the room's title", res.LobbyCard)
	}
	t.Logf("order %s total %s; sale clock %v; audit %q", res.OrderID, res.OrderTotal, res.SaleClock, res.Audit)
	if res.Studio == nil || res.Studio.State != "live" {
		t.Errorf("studio = %+v, want state live", res.Studio)
	} else {
		t.Logf("studio sends %s", res.Studio.Codec)
	}
	for _, p := range []struct {
		name string
		got  *playback
	}{{"viewer", res.Viewer}, {"early viewer (joined before go-live)", res.Early}} {
		checkPlayback(t, p.name, p.got)
	}
	var whip, del bool
	for _, x := range res.HTTP {
		switch {
		case x.Method == "POST" && strings.HasPrefix(x.Path, "/whip/"):
			whip = true
			if x.Status != http.StatusCreated {
				t.Errorf("POST %s = %d, want 201", x.Path, x.Status)
			}
		case x.Method == "POST" && strings.HasPrefix(x.Path, "/whep/"):
			if x.Status != http.StatusCreated {
				t.Errorf("POST %s = %d, want 201", x.Path, x.Status)
			}
		case x.Method == "DELETE" && x.Page == "studio":
			del = true
			if x.Status < 200 || x.Status > 299 {
				t.Errorf("studio End: DELETE %s = %d, want 2xx", x.Path, x.Status)
			}
		}
	}
	if !whip {
		t.Error("studio never posted to /whip/")
	}
	if !del {
		t.Error("studio End sent no DELETE to the session")
	}
}

// missing skips the test, or fails it on CI where every tool must be there.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why + " (set CI=true to make this a failure)")
}

func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// installDriver installs playwright-core and puppeteer-core from the lock
// file when either is absent.
func installDriver(t *testing.T) {
	t.Helper()
	_, errPW := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json"))
	_, errPP := os.Stat(filepath.Join("node_modules", "puppeteer-core", "package.json"))
	if errPW == nil && errPP == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing(t, "npm not found on PATH and web/e2e/node_modules is not installed")
	}
	args := []string{"ci", "--no-audit", "--no-fund"}
	if _, err := os.Stat("package-lock.json"); err != nil {
		args[0] = "install"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, npm, args...).CombinedOutput()
	if err != nil {
		missing(t, fmt.Sprintf("npm %s failed: %v\n%s", args[0], err, out))
	}
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LIVEROOM_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary is $LIVEROOM_E2E_BIN, or liveroom built once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("LIVEROOM_E2E_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liveroom-e2e")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "liveroom")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", builtBin, "liveroom/cmd/liveroom").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build liveroom/cmd/liveroom: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// startServer builds and starts liveroom on free loopback ports and stops it
// (SIGTERM, then wait) when the test ends.
func startServer(t *testing.T, artifacts string) *server {
	t.Helper()
	return startNode(t, artifacts, nodeOptions{name: "server", jwtSecret: randomString(t), adminKey: randomString(t)})
}

// admin posts body to the admin API, checks the status (want 0: any 2xx)
// and decodes the JSON reply into out.
func (s *server) admin(t *testing.T, path string, body any, want int, out any) {
	t.Helper()
	s.do(t, http.MethodPost, path, body, want, out)
}

// do sends an admin request (body nil: none).
func (s *server) do(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ok := resp.StatusCode == want || (want == 0 && resp.StatusCode/100 == 2)
	if !ok {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, reply, want)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(reply, out); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %v: %s", method, path, err, reply)
	}
}

// metric sums the samples of one series on the server's /metrics.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && (f[0] == name || strings.HasPrefix(f[0], name+"{")) {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// runDriver runs run.mjs and returns its E2E_RESULT line.
func runDriver(t *testing.T, node, chromium, base, artifacts, host, viewer, mod, other string) result {
	t.Helper()
	var res result
	ok := runScript(t, node, chromium, &res, "run.mjs",
		"--base", base, "--room", room, "--token", host, "--viewer-token", viewer, "--mod-token", mod, "--extra-token", other, "--out", artifacts)
	if !ok && res.OK {
		t.Errorf("driver reported ok but exited with an error")
	}
	return res
}

// runScript runs a browser driver script with node and decodes its
// "E2E_RESULT {json}" line into out; it reports whether the script exited 0.
func runScript(t *testing.T, node, chromium string, out any, script string, args ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("browser driver %s timed out: %v\nstdout:\n%s\nstderr:\n%s", script, ctx.Err(), stdout, stderr.Bytes())
	}
	found := false
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "E2E_RESULT ")
		if !ok {
			continue
		}
		if jerr := json.Unmarshal([]byte(line), out); jerr != nil {
			t.Fatalf("driver result is not JSON: %v: %s", jerr, line)
		}
		found = true
	}
	if !found {
		t.Fatalf("browser driver %s printed no result (exit %v)\nstdout:\n%s\nstderr:\n%s", script, err, stdout, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Logf("driver stderr:\n%s", stderr.Bytes())
	}
	return err == nil
}

// freePort returns a loopback port that is free now; with udp it is free for
// both TCP and UDP (the WebRTC port serves ICE over both).
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !udp {
			l.Close()
			return port
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b) // 32 characters
}

// tail keeps the last 64 KiB of the server's output for failure messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - 64<<10; over > 0 {
		w.buf = w.buf[over:]
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
