// Package chattest is the conformance suite of chat's state and audit log
// interfaces: the memory, file and Redis implementations run the same
// tests (as room/roomtest does for the room interfaces), and so must any
// new one.
package chattest

import (
	"context"
	"testing"

	"liveroom/chat"
)

// State is every chat state interface at once, as each implementation is.
type State interface {
	chat.History
	chat.Held
	chat.Sanctions
	chat.Rules
	chat.Ranks
}

// Handles are one fresh instance of an implementation under test.
type Handles[T any] struct {
	// A and B reach the same data: two nodes of a cluster, or one value
	// twice where the implementation serves one process.
	A, B T
	// Reopen is a restart of the node: it returns a new value over the data
	// A and B wrote (which the test stops using). Nil if nothing is kept.
	Reopen func() T
	// Forget removes a room data scope (room.Scope), as the sweep of
	// retired room incarnations does. Nil: the implementation's own
	// ForgetScope method, if it has one; without either the test is skipped.
	Forget func(ctx context.Context, scope string) error
}

// forgetter is Handles.Forget, else A's ForgetScope method, else nil.
func forgetter[T any](h Handles[T]) func(ctx context.Context, scope string) error {
	if h.Forget != nil {
		return h.Forget
	}
	if f, ok := any(h.A).(interface {
		ForgetScope(ctx context.Context, scope string) error
	}); ok {
		return f.ForgetScope
	}
	return nil
}

// reopen restarts h, failing the test if the implementation cannot.
func reopen[T any](t *testing.T, h Handles[T]) T {
	t.Helper()
	if h.Reopen == nil {
		t.Fatal("the implementation keeps data across a restart but Handles.Reopen is nil")
	}
	return h.Reopen()
}
