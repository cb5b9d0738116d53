package cart

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The receiver snippet of docs/webhooks.md, verbatim between the markers
// (TestReceiverSnippetInDocs keeps the two the same); the outbox tests
// verify every delivery with it.

// snippet:start
// verifyWebhook checks a liveroom delivery: a v1 signature of
// "id.timestamp.body" under key, and a timestamp within tolerance of now
// (which is what makes a captured delivery useless later). key is the
// secret's bytes; for a whsec_ secret, its base64-decoded part.
func verifyWebhook(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return errors.New("missing webhook-id or webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp is too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid webhook-signature")
}

// snippet:end

func TestReceiverSnippetInDocs(t *testing.T) {
	src, err := os.ReadFile("webhook_receiver_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, code, _ := strings.Cut(string(src), "// snippet:start\n")
	code, _, _ = strings.Cut(code, "\n// snippet:end")
	doc, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	if code == "" || !strings.Contains(string(doc), code) {
		t.Fatal("docs/webhooks.md does not carry verifyWebhook of webhook_receiver_test.go verbatim: copy it over")
	}
}

// The test vector of the Standard Webhooks reference libraries: a receiver
// using one of them accepts what liveroom sends.
func TestSignV1StandardVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	got := SignV1(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("SignV1 = %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm9wZQ== "+got)
	key := webhookKey(secret)
	at := time.Unix(1614265330, 0)
	for _, tc := range []struct {
		name    string
		now     time.Time
		body    []byte
		edit    func(http.Header)
		wantErr bool
	}{
		{"valid", at.Add(time.Minute), body, nil, false},
		{"replayed an hour later", at.Add(time.Hour), body, nil, true},
		{"from the future", at.Add(-time.Hour), body, nil, true},
		{"body changed", at, []byte(`{"test": 2432232315}`), nil, true},
		{"timestamp changed", at, body, func(h http.Header) { h.Set("webhook-timestamp", "1614265331") }, true},
		{"id changed", at, body, func(h http.Header) { h.Set("webhook-id", "msg_other") }, true},
		{"no signature", at, body, func(h http.Header) { h.Del("webhook-signature") }, true},
		{"v2 only", at, body, func(h http.Header) { h.Set("webhook-signature", strings.Replace(got, "v1,", "v2,", 1)) }, true},
	} {
		hd := h.Clone()
		if tc.edit != nil {
			tc.edit(hd)
		}
		err := verifyWebhook(key, hd, tc.body, tc.now, 5*time.Minute)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: verify = %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
	// A secret without the whsec_ prefix is used as it is.
	if webhookKey("plain-secret-0123456789")[0] != 'p' {
		t.Error("plain secret not used as bytes")
	}
}
