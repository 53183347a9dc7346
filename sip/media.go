package sip

import (
	"context"
	"fmt"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo/sip"
)

var _ media.Media = (*Server)(nil)

// errNeedsMixer is why supervisor features are refused on this path.
var errNeedsMixer = fmt.Errorf("listen, whisper, barge and take over need a media server (Asterisk or FreeSWITCH): %w", media.ErrNotSupported)

// Answer is not possible without media: the caller stays in early state
// (ringback) until an agent answers and Connect passes its SDP through.
func (s *Server) Answer(ctx context.Context, leg media.LegID) error {
	if s.opts.anchor != nil {
		return s.answerAnchored(leg)
	}
	return fmt.Errorf("sip: answering %s needs a media server to send audio: %w", leg, media.ErrNotSupported)
}

// Hold with ringback sends 180 Ringing to the caller; music on hold needs
// a media server.
func (s *Server) Hold(ctx context.Context, leg media.LegID, mode media.HoldMode) error {
	if s.opts.anchor != nil {
		return s.holdAnchored(leg, mode)
	}
	if mode != media.HoldRingback {
		return fmt.Errorf("sip: hold %q needs a media server: %w", mode, media.ErrNotSupported)
	}
	l := s.inLeg(leg)
	if l == nil {
		if s.outLeg(leg) != nil {
			return fmt.Errorf("sip: ringback on a dialled leg: %w", media.ErrNotSupported)
		}
		return media.ErrLegGone
	}
	return l.ring()
}

// Connect passes the agent leg's SDP to the customer leg: 200 OK to the
// caller's INVITE the first time, a re-INVITE on a transfer. Routing hangs
// up the previous agent leg itself.
func (s *Server) Connect(ctx context.Context, a, b media.LegID) error {
	if s.opts.anchor != nil {
		return s.connectAnchored(a, b)
	}
	cust, agent := s.inLeg(a), s.outLeg(b)
	if cust == nil || agent == nil {
		cust, agent = s.inLeg(b), s.outLeg(a)
	}
	if cust == nil || agent == nil {
		if s.outLeg(a) != nil && s.outLeg(b) != nil {
			return fmt.Errorf("sip: bridging two dialled legs needs a media server: %w", media.ErrNotSupported)
		}
		return fmt.Errorf("sip: connect %s and %s: %w", a, b, media.ErrLegGone)
	}
	sdp, st := agent.answerSDP()
	switch st {
	case outAnswered:
	case outCalling, outRinging:
		return fmt.Errorf("sip: leg %s has not answered yet", agent.id)
	case outEnded:
		return fmt.Errorf("sip: leg %s: %w", agent.id, media.ErrLegGone)
	}
	return cust.connect(agent.id, sdp)
}

// Monitor needs a mixer.
func (s *Server) Monitor(ctx context.Context, req media.MonitorRequest) (media.LegID, error) {
	if s.opts.anchor != nil {
		return s.monitorAnchored(ctx, req)
	}
	return "", fmt.Errorf("sip: %s: %w", req.Mode, errNeedsMixer)
}

// Capabilities implements media.Media: listening, whispering, barging
// and taking over need a mixer (the supervisor's audio joins or replaces
// the agent's inside a running call); a transfer is a re-INVITE of the
// caller, which a signalling path can do.
func (s *Server) Capabilities() media.Capabilities {
	if s.opts.anchor != nil {
		return anchoredCapabilities()
	}
	const why = "listen, whisper, barge and take over need a media server (Asterisk or FreeSWITCH) or anchored media (sip.media: anchored)"
	return media.Capabilities{Path: media.PathSIP, Unsupported: map[media.Action]string{
		media.ActionMonitor: why, media.ActionTakeOver: why,
		media.ActionClickToCall: "click-to-call bridges two dialled legs, which needs a media server or anchored media (sip.media: anchored)"}}
}

// SetMonitorMode needs a mixer.
func (s *Server) SetMonitorMode(ctx context.Context, leg media.LegID, mode media.MonitorMode) error {
	if s.opts.anchor != nil {
		return s.setMonitorAnchored(leg, func(m *monitorSpec) { m.mode = mode })
	}
	return fmt.Errorf("sip: %s: %w", mode, errNeedsMixer)
}

// Mute needs a mixer.
func (s *Server) Mute(ctx context.Context, leg media.LegID, muted bool) error {
	if s.opts.anchor != nil {
		return s.muteAnchored(leg, muted)
	}
	return fmt.Errorf("sip: mute: %w", errNeedsMixer)
}

// Hangup ends a leg: CANCEL for a ringing dial, a final response for an
// unanswered caller, BYE for an answered one. A gone leg is not an error.
func (s *Server) Hangup(ctx context.Context, leg media.LegID, cause media.Cause) error {
	if l := s.inLeg(leg); l != nil {
		return l.hangup(cause)
	}
	if l := s.outLeg(leg); l != nil {
		l.hangup(cause)
	}
	return nil
}

func (s *Server) inLeg(id media.LegID) *inLeg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inLegs[id]
}

func (s *Server) outLeg(id media.LegID) *outLeg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outLegs[id]
}

// handleAck routes an ACK for a 2xx we sent to its leg.
func (s *Server) handleAck(req *sip.Request) {
	s.mu.Lock()
	ref, ok := s.byCallID[callIDOf(req)]
	s.mu.Unlock()
	if ok && ref.in != nil {
		ref.in.onAck(req.Body())
	}
}

// handleBye ends whichever leg the dialog belongs to.
func (s *Server) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	s.mu.Lock()
	ref, ok := s.byCallID[callIDOf(req)]
	s.mu.Unlock()
	switch {
	case ok && ref.in != nil:
		s.respond(tx, req, 200, "OK", nil)
		ref.in.onBye()
	case ok && ref.branch != nil:
		s.respond(tx, req, 200, "OK", nil)
		ref.branch.leg.onBye(ref.branch)
	default:
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
	}
}

// endAllCalls hangs up every live leg (shutdown phase two) and waits,
// bounded by ctx, for the BYEs and CANCELs to go out.
func (s *Server) endAllCalls(ctx context.Context) {
	s.mu.Lock()
	ins := make([]*inLeg, 0, len(s.inLegs))
	for _, l := range s.inLegs {
		ins = append(ins, l)
	}
	outs := make([]*outLeg, 0, len(s.outLegs))
	for _, l := range s.outLegs {
		outs = append(outs, l)
	}
	s.mu.Unlock()
	for _, l := range outs {
		l.hangup(media.CauseNormal)
	}
	for _, l := range ins {
		_ = l.hangup(media.CauseNormal)
	}
	for {
		s.mu.Lock()
		n := len(s.byCallID)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.tick():
		}
	}
}

// tick paces endAllCalls' polling.
func (s *Server) tick() <-chan time.Time { return time.After(20 * time.Millisecond) }

// Gone implements media.Media: this process holds every leg's dialog, so
// a leg is gone once its dialog is. (A far end that vanished without a
// BYE keeps its dialog until the RTP inactivity check ends it, with
// anchored media.)
func (s *Server) Gone(_ context.Context, legs []media.LegID) ([]media.LegID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []media.LegID
	for _, id := range legs {
		if s.inLegs[id] == nil && s.outLegs[id] == nil {
			gone = append(gone, id)
		}
	}
	return gone, nil
}
