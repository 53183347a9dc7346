package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/rtpanchor"
)

// With a media anchor (WithMediaAnchor) the SIP path carries the audio of
// every call itself (README.md, "Media on the built-in SIP path"): each
// leg's SDP names an rtpanchor port instead of the other party's, a call
// is one rtpanchor.Session, and the commands a signalling-only B2BUA
// refuses (Answer, music on hold, Monitor, SetMonitorMode, Mute, bridging
// two dialled legs) become routes in the session's mixer.

// legMedia is one SIP leg's anchored media.
type legMedia struct {
	sess    *rtpanchor.Session
	ml      *rtpanchor.Leg
	codec   rtpanchor.Codec
	eventPT uint8
	dir     rtpanchor.Direction // ours, as last written in our SDP
	sessID  uint64
	version uint64
	sdp     []byte // our current description for this leg
	// lateOffer: the caller's INVITE had no SDP, so sdp is our offer
	// and the answer comes in the ACK of our 2xx (RFC 3261 section
	// 13.2.1); until then the leg has no remote to send to.
	lateOffer bool
}

// monitorSpec is what a supervisor's dialled leg joins on answer.
type monitorSpec struct {
	customer, agent *legMedia
	mode            media.MonitorMode
	paused          bool
}

// anchorHandler turns what the mixer reports into facts.
type anchorHandler struct{ s *Server }

func (h anchorHandler) DTMF(l *rtpanchor.Leg, digit rune, _ time.Duration) {
	h.s.report(media.DTMF{FactBase: media.FactBase{At: h.s.now()}, Leg: media.LegID(l.Name), Digit: string(digit)})
}

// LegGone ends a ghost leg: its phone stopped sending RTP without a BYE.
func (h anchorHandler) LegGone(l *rtpanchor.Leg) {
	leg := media.LegID(l.Name)
	h.s.log.Warn("no RTP from a leg for the inactivity timeout; ending it", "leg", leg)
	h.s.goBackground(func() {
		ctx, cancel := context.WithTimeout(h.s.baseCtx, 5*time.Second)
		defer cancel()
		_ = h.s.Hangup(ctx, leg, media.CauseFailed)
	})
}

// errMediaRefused carries the SIP status for an INVITE whose media the
// anchor cannot take.
type errMediaRefused struct {
	code   int
	reason string
	err    error
}

func (e *errMediaRefused) Error() string { return e.err.Error() }
func (e *errMediaRefused) Unwrap() error { return e.err }

// anchorCaller anchors an inbound caller's offer: a new session (refused
// with 503 at the call cap) and a leg answering the offer (488 when no
// codec fits).
//
// An INVITE without a body is a late offer: the leg offers PCMU, PCMA and
// telephone-events in our 200 OK and takes the answer from the ACK
// (takeLateAnswer).
func (s *Server) anchorCaller(id media.LegID, offer []byte) (*legMedia, error) {
	if len(bytes.TrimSpace(offer)) == 0 {
		return s.anchorLateOffer(id)
	}
	d, err := rtpanchor.ParseSDP(offer)
	if err != nil {
		return nil, &errMediaRefused{488, "Not Acceptable Here", err}
	}
	codec, ev, dir, err := rtpanchor.Negotiate(d)
	if err != nil {
		return nil, &errMediaRefused{488, "Not Acceptable Here", err}
	}
	sess, err := s.opts.anchor.NewSession(anchorHandler{s})
	if err != nil {
		return nil, &errMediaRefused{503, "Service Unavailable", err}
	}
	ml, err := sess.NewLeg(string(id))
	if err != nil {
		sess.Close()
		return nil, &errMediaRefused{503, "Service Unavailable", err}
	}
	if err := ml.Apply(d, codec); err != nil {
		sess.Close()
		return nil, &errMediaRefused{488, "Not Acceptable Here", err}
	}
	// Until answered the caller may only listen (early media): no ghost
	// check before the 200 OK (answerAnchored).
	ml.WatchInactivity(false)
	m := &legMedia{sess: sess, ml: ml, codec: codec, eventPT: ev, dir: dir, sessID: rand.Uint64() >> 1}
	if err := m.write(); err != nil {
		sess.Close()
		return nil, &errMediaRefused{500, "Server Internal Error", err}
	}
	return m, nil
}

// anchorLateOffer anchors a caller whose INVITE carried no offer: a new
// session and a leg whose description is our offer.
func (s *Server) anchorLateOffer(id media.LegID) (*legMedia, error) {
	sess, err := s.opts.anchor.NewSession(anchorHandler{s})
	if err != nil {
		return nil, &errMediaRefused{503, "Service Unavailable", err}
	}
	ml, err := sess.NewLeg(string(id))
	if err != nil {
		sess.Close()
		return nil, &errMediaRefused{503, "Service Unavailable", err}
	}
	ml.WatchInactivity(false)
	m := &legMedia{sess: sess, ml: ml, codec: rtpanchor.PCMU, eventPT: 101, dir: rtpanchor.SendRecv,
		sessID: rand.Uint64() >> 1, lateOffer: true}
	if err := m.write(rtpanchor.PCMU, rtpanchor.PCMA); err != nil {
		sess.Close()
		return nil, &errMediaRefused{500, "Server Internal Error", err}
	}
	return m, nil
}

// errNoAnswerInAck: a late-offer caller's ACK carried no usable answer to
// our offer; RFC 3261 section 13.2.1 leaves a BYE as the way out.
var errNoAnswerInAck = errors.New("sip: the ACK carries no usable SDP answer to our offer")

// takeLateAnswer applies the answer a late-offer caller sent in its ACK.
// It must name one of the codecs we offered; our description is then
// rewritten with that codec alone, for later offers in the dialog.
func (m *legMedia) takeLateAnswer(body []byte) error {
	m.lateOffer = false
	if len(bytes.TrimSpace(body)) == 0 {
		return errNoAnswerInAck
	}
	d, err := rtpanchor.ParseSDP(body)
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAnswerInAck, err)
	}
	codec, _, _, err := rtpanchor.Negotiate(d)
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAnswerInAck, err)
	}
	if err := m.ml.Apply(d, codec); err != nil {
		return fmt.Errorf("%w: %w", errNoAnswerInAck, err)
	}
	m.codec, m.eventPT = codec, d.EventPT
	return m.write()
}

// write renders our SDP for the leg with a new version (RFC 3264 section 8).
func (m *legMedia) write(codecs ...rtpanchor.Codec) error {
	if len(codecs) == 0 {
		codecs = []rtpanchor.Codec{m.codec}
	}
	m.version++
	b, err := rtpanchor.WriteSDP(rtpanchor.SDPParams{Addr: m.ml.Local(), SessionID: m.sessID, Version: m.version,
		Codecs: codecs, EventPT: m.eventPT, Direction: m.dir})
	if err != nil {
		return err
	}
	m.sdp = b
	return nil
}

// anchorDial gives a dialled leg its media: a leg in the session of the
// call it belongs to (the customer's, or routing's call id for an
// outbound call whose customer is not dialled yet) and the offer for its
// INVITE: PCMU and PCMA, telephone-events.
func (s *Server) anchorDial(id media.LegID, req media.DialRequest) (*legMedia, error) {
	sess := s.sessionFor(req.Customer, req.CallID)
	owner := false
	if sess == nil {
		var err error
		if sess, err = s.opts.anchor.NewSession(anchorHandler{s}); err != nil {
			return nil, fmt.Errorf("sip: %w: %w", err, media.ErrMediaUnavailable)
		}
		owner = true
	}
	ml, err := sess.NewLeg(string(id))
	if err != nil {
		if owner {
			sess.Close()
		}
		return nil, fmt.Errorf("sip: %w: %w", err, media.ErrMediaUnavailable)
	}
	m := &legMedia{sess: sess, ml: ml, codec: rtpanchor.PCMU, eventPT: 101, dir: rtpanchor.SendRecv, sessID: rand.Uint64() >> 1}
	if err := m.write(rtpanchor.PCMU, rtpanchor.PCMA); err != nil {
		s.releaseMedia(m)
		return nil, err
	}
	if req.CallID != "" {
		s.mu.Lock()
		s.callSessions[req.CallID] = sess
		s.mu.Unlock()
	}
	return m, nil
}

// sessionFor finds the session a new leg of a call joins.
func (s *Server) sessionFor(customer media.LegID, callID string) *rtpanchor.Session {
	if m := s.mediaOf(customer); m != nil {
		return m.sess
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callSessions[callID]
}

// mediaOf is the anchored media of a leg, nil if it has none.
func (s *Server) mediaOf(id media.LegID) *legMedia {
	if id == "" {
		return nil
	}
	if l := s.inLeg(id); l != nil {
		return l.m
	}
	if l := s.outLeg(id); l != nil {
		return l.m
	}
	return nil
}

// releaseMedia closes a leg's media and, with the call's last leg, the
// session (it then no longer counts against the call cap).
func (s *Server) releaseMedia(m *legMedia) {
	if m == nil {
		return
	}
	m.ml.Close()
	if len(m.sess.Legs()) > 0 {
		return
	}
	m.sess.Close()
	s.mu.Lock()
	for k, v := range s.callSessions {
		if v == m.sess {
			delete(s.callSessions, k)
		}
	}
	s.mu.Unlock()
}

// applyAnswer takes the SDP answer of a dialled device.
func (s *Server) applyAnswer(l *outLeg, body []byte) {
	m := l.m
	d, err := rtpanchor.ParseSDP(body)
	if err == nil && len(d.Codecs) == 0 {
		err = rtpanchor.ErrNoCommonCodec
	}
	if err != nil {
		// The device answered; keep the call and latch to its RTP.
		s.log.Warn("dialled device's SDP answer unusable; sending PCMU to where its RTP comes from", "leg", l.id, "err", err)
		return
	}
	m.codec, m.eventPT = d.Codecs[0], d.EventPT
	if err := m.ml.Apply(d, m.codec); err != nil {
		s.log.Warn("apply SDP answer", "leg", l.id, "err", err)
	}
}

// onAnchoredAnswer sets a dialled leg's routes once its device answered:
// a supervisor joins in their mode; an agent's own outbound leg hears
// ringback while the customer is dialled.
func (s *Server) onAnchoredAnswer(l *outLeg) {
	switch {
	case l.monitor != nil:
		if err := s.applyMonitor(l); err != nil {
			s.log.Warn("join supervisor", "leg", l.id, "err", err)
		}
	case l.req.Customer == "" && l.req.Number == "":
		if err := l.m.sess.PlayRingback(l.m.ml); err != nil {
			s.log.Warn("ringback to agent", "leg", l.id, "err", err)
		}
	}
}

// applyMonitor routes a supervisor's answered leg as its mode says.
func (s *Server) applyMonitor(l *outLeg) error {
	mon := l.monitor
	mode := rtpanchor.MonitorMode(mon.mode)
	if mon.paused {
		mode = rtpanchor.Pause
	}
	return l.m.sess.Monitor(l.m.ml, mon.customer.ml, mon.agent.ml, mode)
}

// reanswer handles an offer inside an established dialog (hold, resume,
// codec change): the anchor applies it to the leg and answers; the other
// party's leg is not touched. nil body: a session refresh, answered with
// our current description.
func (s *Server) reanswer(m *legMedia, offer []byte) ([]byte, int, error) {
	if len(offer) == 0 {
		return m.sdp, 200, nil
	}
	d, err := rtpanchor.ParseSDP(offer)
	if err != nil {
		return nil, 488, err
	}
	codec, ev, dir, err := rtpanchor.Negotiate(d)
	if err != nil {
		return nil, 488, err
	}
	if err := m.ml.Apply(d, codec); err != nil {
		return nil, 488, err
	}
	m.codec, m.eventPT, m.dir = codec, ev, dir
	if err := m.write(); err != nil {
		return nil, 500, err
	}
	return m.sdp, 200, nil
}

// anchoredCapabilities: with a mixer the path does every action.
func anchoredCapabilities() media.Capabilities {
	return media.Capabilities{Path: media.PathSIP, Unsupported: map[media.Action]string{}}
}

// errNotAnchored is returned for a leg that has no anchored media (it
// ended, or it was never anchored).
var errNotAnchored = errors.New("sip: leg has no anchored media")

// answerAnchored answers a caller with the anchored SDP (200 OK): the
// queue's music mode, where the caller is answered on entry. A caller
// left unanswered (ringback mode) hears early media instead (Hold).
func (s *Server) answerAnchored(leg media.LegID) error {
	if l := s.inLeg(leg); l != nil {
		return l.answerAnchored()
	}
	if s.outLeg(leg) != nil {
		return nil // a dialled leg is answered by its device
	}
	return media.ErrLegGone
}

// holdAnchored plays music or ringback to a leg (early media for a
// caller not answered yet).
func (s *Server) holdAnchored(leg media.LegID, mode media.HoldMode) error {
	if mode != media.HoldMusic && mode != media.HoldRingback {
		return fmt.Errorf("sip: hold mode %q: %w", mode, media.ErrNotSupported)
	}
	m := s.mediaOf(leg)
	if m == nil {
		return media.ErrLegGone
	}
	if l := s.inLeg(leg); l != nil {
		if err := l.earlyMedia(); err != nil {
			return err
		}
	}
	if mode == media.HoldMusic {
		return m.sess.PlayMusic(m.ml)
	}
	return m.sess.PlayRingback(m.ml)
}

// connectAnchored puts a and b in one conversation in the mixer: an
// unanswered caller is answered (200 OK), every other leg of the call
// stops hearing them (the previous agent, whom routing hangs up), and no
// re-INVITE goes to anyone.
func (s *Server) connectAnchored(a, b media.LegID) error {
	ma, mb := s.mediaOf(a), s.mediaOf(b)
	if ma == nil || mb == nil {
		return fmt.Errorf("sip: connect %s and %s: %w", a, b, media.ErrLegGone)
	}
	if ma.sess != mb.sess {
		return fmt.Errorf("sip: connect %s and %s: legs of two different calls: %w", a, b, media.ErrNotSupported)
	}
	for _, id := range []media.LegID{a, b} {
		if l := s.outLeg(id); l != nil {
			if _, st := l.answerSDP(); st != outAnswered {
				return fmt.Errorf("sip: leg %s has not answered yet (%s)", id, st)
			}
		}
	}
	for _, id := range []media.LegID{a, b} {
		if l := s.inLeg(id); l != nil {
			if err := l.answerAnchored(); err != nil {
				return err
			}
		}
	}
	for _, other := range ma.sess.Legs() {
		if other != ma.ml && other != mb.ml {
			_ = ma.sess.SetHears(other)
		}
	}
	return ma.sess.Relay(ma.ml, mb.ml)
}

// monitorAnchored rings the supervisor into the call's session; on
// answer they join in req.Mode (onAnchoredAnswer).
func (s *Server) monitorAnchored(ctx context.Context, req media.MonitorRequest) (media.LegID, error) {
	if !req.Mode.Valid() {
		return "", fmt.Errorf("sip: monitor mode %q: %w", req.Mode, media.ErrNotSupported)
	}
	cust, agent := s.mediaOf(req.Customer), s.mediaOf(req.Agent)
	if cust == nil || agent == nil {
		return "", fmt.Errorf("sip: monitor %s/%s: %w", req.Customer, req.Agent, media.ErrLegGone)
	}
	if cust.sess != agent.sess {
		return "", fmt.Errorf("sip: monitor %s and %s: legs of two different calls: %w", req.Customer, req.Agent, media.ErrNotSupported)
	}
	return s.dial(ctx, media.DialRequest{CallID: req.CallID, Customer: req.Customer, Target: req.Supervisor,
		Timeout: req.Timeout, CallerID: "monitor"}, &monitorSpec{customer: cust, agent: agent, mode: req.Mode})
}

// setMonitorAnchored changes a supervisor leg's monitor and re-routes it
// when answered.
func (s *Server) setMonitorAnchored(leg media.LegID, change func(*monitorSpec)) error {
	l := s.outLeg(leg)
	if l == nil {
		return media.ErrLegGone
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.monitor == nil {
		return fmt.Errorf("sip: leg %s is not a supervisor's: %w", leg, media.ErrNotSupported)
	}
	change(l.monitor)
	if l.state != outAnswered {
		return nil // applied on answer
	}
	return s.applyMonitor(l)
}

// muteAnchored pauses a supervisor (hears nothing, heard by nobody) or
// mutes any other leg (nobody hears it).
func (s *Server) muteAnchored(leg media.LegID, muted bool) error {
	if l := s.outLeg(leg); l != nil {
		l.mu.Lock()
		isMonitor := l.monitor != nil
		l.mu.Unlock()
		if isMonitor {
			return s.setMonitorAnchored(leg, func(m *monitorSpec) { m.paused = muted })
		}
	}
	m := s.mediaOf(leg)
	if m == nil {
		return media.ErrLegGone
	}
	return m.sess.Mute(m.ml, muted)
}
