package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the liveroom binary binary() built for the run (not one
// given in LIVEROOM_E2E_BIN).
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		if err := os.RemoveAll(filepath.Dir(builtBin)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: remove the built binary: %v\n", err)
		}
	}
	os.Exit(code)
}
