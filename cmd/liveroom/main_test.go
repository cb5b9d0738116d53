package main

import (
	"testing"

	"liveroom/cmd/internal/proctest"
)

// TestMain removes the liveroom binary the process tests built.
func TestMain(m *testing.M) { proctest.Main(m) }
