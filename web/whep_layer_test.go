package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

func TestLayerRoutes(t *testing.T) {
	n := newTestNode(t)
	rm := n.createRoom("sc", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	whip := mediatest.WHIP(n.srv.URL+"/whip/sc", rm.StreamKey)
	pub, err := mediatest.NewSimulcastPublisher(ctx, whip.Signal, mediatest.SimulcastOptions{
		Layers: []mediatest.SimulcastLayer{{RID: "q", Size: 200}, {RID: "h", Size: 500}, {RID: "f", Packets: 3, Size: 1000}},
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer pub.Close()
	whep := mediatest.WHEP(n.srv.URL+"/whep/sc", "")
	v, err := mediatest.NewLayerViewer(ctx, whep.Signal)
	if err != nil {
		t.Fatalf("viewer: %v", err)
	}
	defer v.Close()
	layerPath := strings.TrimPrefix(whep.Location(), n.srv.URL) + "/layer"
	layersPath := strings.TrimPrefix(whip.Location(), n.srv.URL) + "/layers"

	var st media.ViewerLayer
	for {
		status, _, body := n.do("POST", layerPath, "", "application/json", []byte(`{"quality":"low"}`))
		if status != http.StatusOK {
			t.Fatalf("POST layer: %d %s", status, body)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if st.Layer == "q" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("viewer never on q: %+v", st)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if st.Quality != "low" || st.Paused || len(st.Layers) != 3 {
		t.Fatalf("layer state %+v, want quality low, not paused, 3 layers", st)
	}
	status, _, body := n.do("GET", layersPath, rm.StreamKey, "", nil)
	var rl media.RoomLayers
	if status != http.StatusOK || json.Unmarshal(body, &rl) != nil {
		t.Fatalf("GET layers: %d %s", status, body)
	}
	if len(rl.Layers) != 3 || rl.Layers[0].RID != "f" || rl.Layers[2].RID != "q" || rl.Layers[2].Viewers != 1 {
		t.Fatalf("layers = %+v, want f,h,q with the viewer on q", rl)
	}
	for _, c := range []struct {
		name, method, path, bearer, body string
		want                             int
	}{
		{"layers without the host's key", "GET", layersPath, "", "", http.StatusUnauthorized},
		{"bad JSON", "POST", layerPath, "", "{", http.StatusBadRequest},
		{"unknown quality", "POST", layerPath, "", `{"quality":"ultra!"}`, http.StatusBadRequest},
		{"empty quality", "POST", layerPath, "", `{}`, http.StatusBadRequest},
		{"unknown session", "GET", "/whep/sc/nope/layer", "", "", http.StatusNotFound},
		{"the publisher's session on the WHEP route", "GET", strings.Replace(strings.TrimSuffix(layersPath, "s"), "/whip/", "/whep/", 1), "", "", http.StatusNotFound},
	} {
		status, _, body := n.do(c.method, c.path, c.bearer, "application/json", []byte(c.body))
		if status != c.want {
			t.Errorf("%s: got %d %s, want %d", c.name, status, body, c.want)
		}
	}
}
