package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
)

// TestTranscodeDevReportsFFmpeg: --dev says whether AAC can be transcoded,
// naming what is missing when ffmpeg is not on PATH.
func TestTranscodeDevReportsFFmpeg(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string // "" = the test's PATH
		want string
	}{
		{"missing", t.TempDir(), "AAC audio: MISSING: ffmpeg not found on PATH"},
		{"present", "", "AAC audio: ffmpeg with libopus found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				if _, err := exec.LookPath("ffmpeg"); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatal("ffmpeg not installed")
					}
					t.Skip("ffmpeg not installed")
				}
			}
			env := []string{"LIVEROOM_JWT_SECRET=", "LIVEROOM_ADMIN_KEY=", "LIVEROOM_REDIS_URL="}
			if tc.path != "" {
				env = append(env, "PATH="+tc.path)
			}
			p := proctest.Start(t, proctest.Options{DataDir: t.TempDir(), Args: []string{"--dev"}, Env: env})
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(p.Stdout(), "AAC audio:") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if out := p.Stdout(); !strings.Contains(out, tc.want) {
				t.Errorf("dev output lacks %q:\n%s", tc.want, out)
			}
			p.Stop(t, 5*time.Second)
		})
	}
}
