package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The token command mints no token for the server's own identities.
func TestTokenCommandRefusesReservedSubjects(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"admin", "host:demo", "rtsp-pull", "edge:n2", "guest-0a0b"} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"token", "--data-dir", dir, "--room", "demo", "--role", "host", "--sub", sub}, &out, &errOut, noEnv)
		if code == 0 || out.Len() != 0 || !strings.Contains(errOut.String(), "reserved") {
			t.Errorf("--sub %q: exit %d, out %q, err %q; want a refusal naming the reserved subject", sub, code, out.String(), errOut.String())
		}
	}
}
