package mediatest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Signal exchanges an SDP offer for an answer: the media Go API directly,
// or WHIP/WHEP over HTTP.
type Signal func(ctx context.Context, offer string) (answer string, err error)

// HTTPSignaler is a WHIP or WHEP client: Signal POSTs the offer as
// application/sdp, expects 201 and keeps the Location for Delete.
type HTTPSignaler struct {
	URL    string
	Token  string       // Bearer token; "" = none
	Client *http.Client // nil = http.DefaultClient

	mu       sync.Mutex
	location string
	etag     string
}

// WHIP returns a signaler for a WHIP endpoint (POST /whip/{room}).
func WHIP(endpoint, token string) *HTTPSignaler { return &HTTPSignaler{URL: endpoint, Token: token} }

// WHEP returns a signaler for a WHEP endpoint (POST /whep/{room}).
func WHEP(endpoint, token string) *HTTPSignaler { return &HTTPSignaler{URL: endpoint, Token: token} }

// StatusError is a non-2xx answer from the endpoint.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("http %d: %s", e.Code, e.Body) }

func (h *HTTPSignaler) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

func (h *HTTPSignaler) do(req *http.Request) (*http.Response, []byte, error) {
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

// Signal implements Signal.
func (h *HTTPSignaler) Signal(ctx context.Context, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, strings.NewReader(offer))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, body, err := h.do(req)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("201 without Location")
	}
	base, err := url.Parse(h.URL)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	h.mu.Lock()
	h.location = base.ResolveReference(ref).String()
	h.etag = resp.Header.Get("ETag")
	h.mu.Unlock()
	return string(body), nil
}

// Location is the session URL from the last successful Signal.
func (h *HTTPSignaler) Location() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.location
}

// ETag is the ETag from the last successful Signal.
func (h *HTTPSignaler) ETag() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.etag
}

// Delete ends the session (DELETE Location).
func (h *HTTPSignaler) Delete(ctx context.Context) error {
	loc := h.Location()
	if loc == "" {
		return errors.New("no session to delete")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc, nil)
	if err != nil {
		return err
	}
	resp, body, err := h.do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	return nil
}

// negotiate creates the offer, waits for all candidates (WHIP/WHEP clients
// here do not trickle), signals and applies the answer.
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, signal Signal) error {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	answer, err := signal(ctx, pc.LocalDescription().SDP)
	if err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("set remote description: %w", err)
	}
	return nil
}

// waitConnected blocks until the state channel reports connected, or fails.
func waitConnected(ctx context.Context, connected <-chan struct{}, failed <-chan struct{}) error {
	select {
	case <-connected:
		return nil
	case <-failed:
		return errors.New("peer connection failed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Negotiate is what NewPublisher and NewViewer do to connect: for tests that
// build their own PeerConnection (own tracks, own RTCP).
func Negotiate(ctx context.Context, pc *webrtc.PeerConnection, signal Signal) error {
	return negotiate(ctx, pc, signal)
}
