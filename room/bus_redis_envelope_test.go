package room

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The hand-built targeted delivery decodes to exactly what json.Marshal of
// the envelope did, starts with the bus's own prefix, and refuses a body
// that is not JSON (as json.Marshal did).
func TestRedisBusEnvelope(t *testing.T) {
	b := &RedisBus{id: "0011aabb", self: `T{"n":"0011aabb"`}
	cases := []Delivery{
		{Event: Event{Type: "cart", Body: []byte(`{"items":[]}`), Ref: "k1"}, UserID: "u1"},
		{Event: Event{Type: "error", Body: []byte(` { "code" : "banned" } `)}, UserID: `é "x" <&>\` + "\n", Close: "banned"},
		{Event: Event{Type: "report"}, MinRole: RoleModerator},
		{Event: Event{Type: "x", Ref: "\u2028"}, Close: CodeRoomClosed},
	}
	for _, d := range cases {
		got, err := b.appendEnvelope(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(got), b.self) {
			t.Fatalf("%s does not start with %s", got, b.self)
		}
		want := envelope{Node: b.id, Type: d.Event.Type, Body: d.Event.Body, Ref: d.Event.Ref, UserID: d.UserID, MinRole: d.MinRole, Close: d.Close}
		wantJS, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var g, w envelope
		if err := json.Unmarshal(got[1:], &g); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(wantJS, &w); err != nil {
			t.Fatal(err)
		}
		if g.Body != nil {
			g.Body = compact(t, g.Body)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("got %+v (%s), want %+v (%s)", g, got, w, wantJS)
		}
	}
	if _, err := b.appendEnvelope(nil, Delivery{Event: Event{Type: "x", Body: []byte(`{"a":`)}}); err == nil {
		t.Fatal("a body that is not JSON was sent")
	}
}

func compact(t *testing.T, js []byte) []byte {
	var sb strings.Builder
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	sb.Write(out)
	return []byte(sb.String())
}
