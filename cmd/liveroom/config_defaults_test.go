package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
)

// configs/liveroom.yaml says "every key with its default": each value it
// documents must be the one the server runs with when the key is absent.
// Both sides go through the same loading (decode over the defaults, then
// the derived defaults) and the same YAML encoding, so a "0s" in the file
// and a 40ms default cannot pass for each other.
func TestExampleConfigShowsTheDefaults(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "liveroom.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := loadConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fromFile.setDefaults()
	defaults := defaultConfig()
	defaults.setDefaults()

	var documented map[string]any
	if err := yaml.Unmarshal(b, &documented); err != nil {
		t.Fatal(err)
	}
	got, want := asYAMLMap(t, fromFile), asYAMLMap(t, defaults)
	keys := leafKeys("", documented)
	if len(keys) < 50 {
		t.Fatalf("found %d documented keys in configs/liveroom.yaml; the walk is broken", len(keys))
	}
	for _, key := range keys {
		g, gok := lookupKey(got, key)
		w, wok := lookupKey(want, key)
		if !gok || !wok {
			t.Errorf("%s: documented, but not a key of the configuration", key)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: configs/liveroom.yaml says %v, the default is %v", key, g, w)
		}
	}
}

func asYAMLMap(t *testing.T, c Config) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// leafKeys lists the dotted paths of m's values that are not sections.
func leafKeys(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out = append(out, leafKeys(prefix+k+".", sub)...)
			continue
		}
		out = append(out, prefix+k)
	}
	sort.Strings(out)
	return out
}

func lookupKey(m map[string]any, path string) (any, bool) {
	var cur any = m
	start := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '.' {
			continue
		}
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[path[start:i]]; !ok {
			return nil, false
		}
		start = i + 1
	}
	return normalize(cur), true
}

// normalize makes an empty list and a missing one compare equal (the
// encoder writes a nil slice as [] and the file may too).
func normalize(v any) any {
	if l, ok := v.([]any); ok && len(l) == 0 {
		return "[]"
	}
	if v == nil {
		return "[]"
	}
	return fmt.Sprint(v)
}
