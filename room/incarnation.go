package room

import "strings"

// scopeSep separates a room's id from its incarnation in a data scope. It
// cannot appear in a room id, and it is valid in file names, bbolt keys
// and inside a Redis {room:...} hash tag.
const scopeSep = "~"

// Scope is the key under which everything of one incarnation of a room is
// stored: products, sales, carts, orders, bans, ranks, the audit log, chat
// history and the bus. Deleting a room and creating one with the same id
// starts a new incarnation, so the new room sees none of the old data.
// Rooms stored before incarnations existed have none: their scope is their
// id, so their data keeps its keys.
func Scope(roomID, incarnation string) string {
	if incarnation == "" {
		return roomID
	}
	return roomID + scopeSep + incarnation
}

// Scope is the room's data scope (see Scope).
func (r Room) Scope() string { return Scope(r.ID, r.Incarnation) }

// SplitScope returns the room id and incarnation of a data scope.
func SplitScope(scope string) (roomID, incarnation string) {
	id, inc, _ := strings.Cut(scope, scopeSep)
	return id, inc
}

// ScopeRoom is the id of the room a data scope belongs to, as clients see it.
func ScopeRoom(scope string) string {
	id, _ := SplitScope(scope)
	return id
}

// ValidScope reports whether s is a data scope Scope can return (it
// becomes part of file names and keys).
func ValidScope(s string) bool {
	id, inc, cut := strings.Cut(s, scopeSep)
	if !ValidID(id) {
		return false
	}
	return !cut || ValidIncarnation(inc)
}

// ValidIncarnation reports whether inc can be a room's incarnation.
func ValidIncarnation(inc string) bool {
	if inc == "" || len(inc) > 32 {
		return false
	}
	for _, c := range inc {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// newIncarnation names a fresh incarnation.
func newIncarnation() string { return RandomID(8) }
