package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// peer is what publisher and viewer sessions share: a PeerConnection, its
// signalling (answer, PATCH) and an idempotent close.
type peer struct {
	s    *SFU
	r    *room
	id   string
	role string // "publisher" or "viewer", for logs
	pc   *webrtc.PeerConnection
	log  *slog.Logger

	sigMu        sync.Mutex // serialises offer/answer exchanges (Patch) and close
	done         chan struct{}
	closeOnce    sync.Once
	connectTimer *time.Timer
	adm          *Admission // its place under the limits; nil = not counted
}

func newPeer(s *SFU, r *room, role string) (*peer, error) {
	return newSessionPeer(context.Background(), s, r, role)
}

// newSessionPeer builds the PeerConnection of a WHIP or WHEP session; it
// claims the admission ctx carries (WithAdmission), released when it closes.
func newSessionPeer(ctx context.Context, s *SFU, r *room, role string) (*peer, error) {
	adm := admissionFrom(ctx)
	if adm != nil && !adm.claim() {
		return nil, errors.New("media: admission already used")
	}
	api := s.api
	if role == "viewer" {
		api = s.viewAPI
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		adm.close()
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	id := newID()
	return &peer{
		s: s, r: r, id: id, role: role, pc: pc, adm: adm,
		log:  s.log.With("room", r.id, "session", id, "role", role),
		done: make(chan struct{}),
	}, nil
}

// answer applies the offer and returns the answer with the server's host
// candidates in it (WHIP/WHEP clients do not trickle from the server).
func (p *peer) answer(ctx context.Context, offer string) (string, error) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: create answer: %v", ErrBadOffer, err)
	}
	return p.setLocal(ctx, ans)
}

func (p *peer) setLocal(ctx context.Context, desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("%w: set local description: %v", ErrBadOffer, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	ld := p.pc.LocalDescription()
	if ld == nil {
		return "", fmt.Errorf("%w: no local description", ErrBadOffer)
	}
	return candidatesInBundle(ld.SDP), nil
}

// candidatesInBundle moves the candidates pion writes into the first media
// section over to the first section that is not rejected. When a client
// offers a section we reject (say, video in a codec we do not have) first,
// pion puts the candidates in that port-0 section, where clients (pion's
// own parser included) ignore them and ICE never starts.
func candidatesInBundle(desc string) string {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(desc); err != nil || len(d.MediaDescriptions) < 2 {
		return desc
	}
	first := d.MediaDescriptions[0]
	if first.MediaName.Port.Value != 0 {
		return desc
	}
	var target *sdp.MediaDescription
	for _, md := range d.MediaDescriptions[1:] {
		if md.MediaName.Port.Value != 0 {
			target = md
			break
		}
	}
	if target == nil {
		return desc
	}
	kept := first.Attributes[:0]
	for _, a := range first.Attributes {
		if a.Key == "candidate" || a.Key == "end-of-candidates" {
			target.Attributes = append(target.Attributes, a)
			continue
		}
		kept = append(kept, a)
	}
	first.Attributes = kept
	out, err := d.Marshal()
	if err != nil {
		return desc
	}
	return string(out)
}

// startConnectTimer arms the connect timeout: onTimeout runs (on an SFU
// goroutine) unless connected or closePC comes first. Call it before the
// answer leaves, so that it happens before any state change.
func (p *peer) startConnectTimer(onTimeout func()) {
	p.connectTimer = time.AfterFunc(p.s.cfg.ConnectTimeout, func() { p.s.spawn(onTimeout) })
}

// connected disarms the connect timeout and counts the session connected.
func (p *peer) connected() {
	p.stopConnectTimer()
	if !p.closed() {
		p.adm.connected()
	}
}

func (p *peer) stopConnectTimer() {
	if p.connectTimer != nil {
		p.connectTimer.Stop()
	}
}

// etag names the current ICE session (RFC 9725 uses it for If-Match on
// PATCH); it changes with an ICE restart.
func (p *peer) etag() string {
	ld := p.pc.LocalDescription()
	if ld == nil {
		return ""
	}
	ufrag, _ := iceCredentials(ld.SDP)
	return `"` + ufrag + `"`
}

// closePC closes the PeerConnection once, waiting for pion's goroutines.
// Never call it from a pion callback: use s.spawn.
func (p *peer) closePC() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.stopConnectTimer()
		p.adm.close()
		p.sigMu.Lock()
		defer p.sigMu.Unlock()
		if err := p.pc.GracefulClose(); err != nil {
			p.log.Debug("close peer connection", "err", err)
		}
	})
}

func (p *peer) closed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
