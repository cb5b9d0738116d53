package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Messages the host sees for RTMP (status description, studio notice).
const (
	msgRTMPVideoCodec = "this video codec cannot be played by browsers here; send H264 without B-frames (OBS: x264, profile baseline or main with B-frames 0)"
	msgRTMPAudioCodec = "this audio codec cannot be played by browsers; send AAC or Opus. Video flows without sound"
	msgRTMPConflict   = "another host is publishing in this room"
)

// rtmpAuthTimeout bounds the authorizer (a store lookup).
const rtmpAuthTimeout = 5 * time.Second

// deadlineConn renews the read and write deadlines on each call, so a
// client that stalls (handshake included) is dropped after the timeout.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Read(p []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c deadlineConn) Write(p []byte) (int, error) {
	_ = c.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

// rtmpStatus sends an onStatus error: ffmpeg prints the description
// ("Server error: …") and stops; OBS logs it.
func rtmpStatus(sc *gortmplib.ServerConn, code, desc string) {
	_ = sc.Write(&message.CommandAMF0{
		ChunkStreamID: 5, MessageStreamID: 0x1000000, Name: "onStatus",
		Arguments: []any{nil, amf0.Object{
			{Key: "level", Value: "error"},
			{Key: "code", Value: code},
			{Key: "description", Value: desc},
		}},
	})
}

// serve runs one RTMP connection: handshake, connect, publish, media.
// Malformed input ends this connection only.
func (rs *RTMPServer) serve(nc net.Conn, secure bool) {
	proto := "rtmp"
	if secure {
		proto = "rtmps"
	}
	remote := nc.RemoteAddr().String()
	log := rs.log.With("remote", remote, "proto", proto)
	sc := &gortmplib.ServerConn{RW: deadlineConn{Conn: nc, timeout: rs.cfg.ReadTimeout}}
	if err := sc.Initialize(); err != nil {
		log.Debug("rtmp handshake failed", "err", err)
		return
	}
	if err := sc.AcceptConn(); err != nil {
		log.Debug("rtmp connect failed", "err", err)
		return
	}
	if !sc.Publish {
		rtmpStatus(sc, "NetStream.Play.Failed", "this server only takes publishers; watch the room in a browser")
		return
	}
	roomID, key, err := parseRTMPTarget(sc.URL)
	if err != nil {
		log.Info("rtmp publish refused", "err", err)
		rtmpStatus(sc, "NetStream.Publish.BadName", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rtmpAuthTimeout)
	var hostID string
	if roomID == "" {
		roomID, hostID, err = rs.deps.Auth.FindPublish(ctx, key)
	} else {
		hostID, err = rs.deps.Auth.AuthorizePublish(ctx, roomID, key)
	}
	cancel()
	if err != nil {
		log.Warn("rtmp publish refused", "room", roomID, "err", err)
		if errors.Is(err, ErrRoomNotFound) {
			rtmpStatus(sc, "NetStream.Publish.BadName", "no room for this stream key or URL: copy the server and key from the studio")
		} else {
			rtmpStatus(sc, "NetStream.Publish.Unauthorized", "wrong stream key")
		}
		return
	}
	log = log.With("room", roomID, "host", hostID)
	if r, ok := rs.s.lookup(roomID); ok && r.checkPublisher(hostID) != nil {
		log.Info("rtmp publish refused: another host is live")
		rtmpStatus(sc, "NetStream.Publish.BadName", msgRTMPConflict)
		return
	}
	if err := sc.AcceptAction(); err != nil {
		return
	}
	p := &rtmpPublisher{rs: rs, sc: sc, nc: nc, roomID: roomID, hostID: hostID, proto: proto, log: log}
	reason := p.run()
	if p.src != nil {
		p.src.Close(reason)
	}
	log.Info("rtmp publisher ended", "reason", reason)
}

// rtmpPublisher is one publishing connection after the publish command.
// Its source starts with the first media message, so what browsers cannot
// play is refused before the room goes live when the headers tell.
type rtmpPublisher struct {
	rs             *RTMPServer
	sc             *gortmplib.ServerConn
	nc             net.Conn
	roomID, hostID string
	proto          string
	log            *slog.Logger

	src       *AUSource
	sps, pps  []byte
	asc       []byte
	audioNote bool
}

// run reads messages until the connection ends or the stream is refused;
// it returns why.
func (p *rtmpPublisher) run() string {
	for {
		msg, err := p.sc.Read()
		if err != nil {
			if strings.Contains(err.Error(), "unsupported video codec") {
				return p.refuse(msgRTMPVideoCodec)
			}
			if strings.Contains(err.Error(), "unsupported audio codec") {
				return p.refuse(msgRTMPAudioCodec)
			}
			return err.Error()
		}
		if err := p.handle(msg); err != nil {
			return err.Error()
		}
	}
}

// refuse tells the host (status and studio) and ends the connection.
func (p *rtmpPublisher) refuse(msg string) string {
	if p.src != nil {
		_ = p.src.Refuse(msg)
	} else {
		p.log.Warn("rtmp stream refused", "reason", msg)
		p.rs.notice(p.roomID, msg)
	}
	rtmpStatus(p.sc, "NetStream.Publish.Rejected", msg)
	return "refused: " + msg
}

var errRTMPEnd = errors.New("stream refused")

func (p *rtmpPublisher) traceArrival(pts time.Duration) {
	if f := p.rs.trace.Load(); f != nil {
		(*f)(ptsTicks(pts, 90000), time.Now())
	}
}

func (p *rtmpPublisher) handle(msg message.Message) error {
	switch m := msg.(type) {
	case *message.Video:
		if m.Codec != message.CodecH264 {
			p.refuse(msgRTMPVideoCodec)
			return errRTMPEnd
		}
		switch m.Type {
		case message.VideoTypeConfig:
			return p.avcConfig(m.AVCConfig)
		case message.VideoTypeAU:
			return p.avcFrame(m.AU, m.DTS+m.PTSDelta)
		}
	case *message.VideoExSequenceStart:
		if m.FourCC != message.FourCCAVC {
			p.refuse(msgRTMPVideoCodec)
			return errRTMPEnd
		}
		return p.avcConfig(m.AVCConfig)
	case *message.VideoExCodedFrames:
		if m.FourCC != message.FourCCAVC {
			p.refuse(msgRTMPVideoCodec)
			return errRTMPEnd
		}
		return p.avcFrame(m.Payload, m.DTS+m.PTSDelta)
	case *message.VideoExFramesX:
		if m.FourCC != message.FourCCAVC {
			p.refuse(msgRTMPVideoCodec)
			return errRTMPEnd
		}
		return p.avcFrame(m.Payload, m.DTS)
	case *message.Audio:
		if m.Codec != message.CodecMPEG4Audio {
			p.dropAudio()
			return nil
		}
		if m.AACType == message.AudioAACTypeConfig {
			if m.AACConfig != nil {
				p.aacConfig(m.AACConfig.Marshal())
			}
			return nil
		}
		return p.aacFrame(m.AU, m.DTS)
	case *message.AudioExSequenceStart:
		switch {
		case m.FourCC == message.FourCCMP4A && m.AACConfig != nil:
			p.aacConfig(m.AACConfig.Marshal())
		case m.FourCC != message.FourCCOpus:
			p.dropAudio()
		}
	case *message.AudioExCodedFrames:
		switch m.FourCC {
		case message.FourCCOpus:
			if err := p.start(); err != nil {
				return err
			}
			p.src.WriteOpus(m.Payload, m.DTS)
		case message.FourCCMP4A:
			return p.aacFrame(m.Payload, m.DTS)
		default:
			p.dropAudio()
		}
	}
	return nil
}

func (p *rtmpPublisher) aacConfig(asc []byte, err error) {
	if err != nil {
		p.dropAudio()
		return
	}
	p.asc = asc
	if p.src != nil {
		p.src.SetAAC(asc)
	}
}

func (p *rtmpPublisher) aacFrame(au []byte, pts time.Duration) error {
	if p.asc == nil || len(au) == 0 {
		return nil // no config yet: nothing to decode it with
	}
	if err := p.start(); err != nil {
		return err
	}
	p.src.WriteAAC([][]byte{au}, pts)
	return nil
}

// dropAudio tells the host once that the audio is dropped.
func (p *rtmpPublisher) dropAudio() {
	if p.audioNote {
		return
	}
	p.audioNote = true
	p.log.Warn("rtmp audio dropped", "reason", msgRTMPAudioCodec)
	p.rs.notice(p.roomID, msgRTMPAudioCodec)
}

// avcConfig takes the AVC sequence header: its SPS decides B-frames before
// the room goes live.
func (p *rtmpPublisher) avcConfig(c *mp4.AVCDecoderConfiguration) error {
	if c == nil || len(c.SequenceParameterSets) == 0 || len(c.PictureParameterSets) == 0 {
		return nil
	}
	p.sps = c.SequenceParameterSets[0].NALUnit
	p.pps = c.PictureParameterSets[0].NALUnit
	if reorder, known := spsReorders(p.sps); known && reorder {
		p.refuse(msgBFrames)
		return errRTMPEnd
	}
	if err := p.start(); err != nil {
		return err
	}
	p.src.SetH264Params(p.sps, p.pps)
	return nil
}

// start makes the publisher its room's source, once.
func (p *rtmpPublisher) start() error {
	if p.src != nil {
		return nil
	}
	src, err := p.rs.s.StartAUSource(p.roomID, p.hostID, AUSourceOptions{
		Protocol: p.proto, Remote: p.nc.RemoteAddr().String(), AAC: p.asc,
		Close:  func() { p.nc.Close() },
		Notice: func(msg string) { p.rs.notice(p.roomID, msg) },
	})
	if err != nil {
		if errors.Is(err, ErrPublisherConflict) {
			rtmpStatus(p.sc, "NetStream.Publish.BadName", msgRTMPConflict)
		}
		return err
	}
	p.src = src
	return nil
}

func (p *rtmpPublisher) avcFrame(payload []byte, pts time.Duration) error {
	p.traceArrival(pts)
	var au h264.AVCC
	if err := au.Unmarshal(payload); err != nil {
		if errors.Is(err, h264.ErrAVCCNoNALUs) {
			return nil
		}
		return fmt.Errorf("bad H264 payload: %w", err)
	}
	if err := p.start(); err != nil {
		return err
	}
	if err := p.src.WriteH264(au, pts); err != nil {
		rtmpStatus(p.sc, "NetStream.Publish.Rejected", strings.TrimPrefix(err.Error(), ErrUnplayable.Error()+": "))
		return err
	}
	return nil
}
