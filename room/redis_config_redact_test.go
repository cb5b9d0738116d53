package room

import (
	"strings"
	"testing"
)

// A malformed redis.url must not put its password in the startup error.
func TestRedisURLErrorHidesPassword(t *testing.T) {
	_, err := RedisConfig{URL: "redis://u:s3cret@ho st:6379/0"}.Client()
	if err == nil {
		t.Fatal("a URL with a space in its host was accepted")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error quotes the password: %v", err)
	}
}
