package sip

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo/sip"
)

// inState is the customer leg's state: the UAS side of the caller's
// INVITE (RFC 3261 section 13.3) and the dialog it creates.
type inState int

const (
	inProceeding inState = iota // 100 Trying sent
	inRinging                   // 180 Ringing sent (Hold ringback)
	inAnswering                 // 200 OK sent, waiting for the ACK
	inConfirmed                 // ACK received, dialog confirmed
	inEnded                     // final non-2xx, CANCEL, BYE or hang-up
)

func (st inState) String() string {
	switch st {
	case inProceeding:
		return "proceeding"
	case inRinging:
		return "ringing"
	case inAnswering:
		return "answering"
	case inConfirmed:
		return "confirmed"
	case inEnded:
		return "ended"
	}
	return "unknown"
}

// inLeg is a customer leg: the caller's INVITE from the trunk.
type inLeg struct {
	s        *Server
	id       media.LegID
	invite   *sip.Request
	tx       sip.ServerTransaction
	localTag string
	offer    []byte // the caller's SDP offer
	caller   string
	hotline  string
	arrived  time.Time
	m        *legMedia      // anchored media (WithMediaAnchor), else nil
	session  *sessionDialog // its session timer (RFC 4028)

	mu        sync.Mutex
	early     bool // 183 with our SDP sent (anchored early media)
	state     inState
	answer    *sip.Response // our 200 OK (retransmitted until ACK)
	connected media.LegID   // agent leg whose SDP the caller has
	dlg       *dialog       // the dialog, from the 200 OK on (dialogs.go)
	answered  chan struct{} // closed when the 200 OK went out
	acked     chan struct{} // closed when the ACK arrived
	ended     chan struct{} // closed when the leg ended
}

// handleInvite serves an INVITE. It blocks until the INVITE transaction
// is done with: final response sent, and ACKed when it was a 2xx.
func (s *Server) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if tagOf(req.To().Params) != "" {
		s.handleReinvite(req, tx)
		return
	}
	if s.draining.Load() {
		s.respond(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "30"))
		return
	}
	if req.Contact() == nil {
		s.respond(tx, req, 400, "Missing Contact", nil)
		return
	}
	arr := s.beginInvite(req)
	defer s.endInvite(req)
	if !s.admitTrunk(req, tx) {
		return
	}
	terms, tooSmall, err := s.opts.session.negotiateUAS(req)
	switch {
	case err != nil:
		s.respond(tx, req, 400, "Bad Session-Expires", nil)
		return
	case tooSmall > 0: // RFC 4028 section 9: ask for at least ours
		s.respond(tx, req, 422, "Session Interval Too Small", nil,
			sip.NewHeader("Min-SE", strconv.Itoa(int(tooSmall/time.Second))))
		return
	}
	s.respond(tx, req, 100, "Trying", nil)

	hotline := req.Recipient.User
	if hotline == "" {
		hotline = req.To().Address.User
	}
	l := &inLeg{
		s: s, id: media.LegID(callIDOf(req)), invite: req, tx: tx,
		localTag: sip.GenerateTagN(16), offer: req.Body(),
		caller: req.From().Address.User, hotline: hotline, arrived: s.now(),
		answered: make(chan struct{}), acked: make(chan struct{}), ended: make(chan struct{}),
	}
	l.session = newSessionDialog(s, l.id, terms, true, l.inDialogRequest,
		func() { _ = l.hangup(media.CauseFailed) })
	if s.opts.anchor != nil {
		m, err := s.anchorCaller(l.id, l.offer)
		if err != nil {
			var refused *errMediaRefused
			errors.As(err, &refused)
			s.log.Info("caller's media refused", "leg", l.id, "status", refused.code, "err", err)
			s.respond(tx, req, refused.code, refused.reason, nil)
			return
		}
		l.m = m
	}
	s.mu.Lock()
	if arr.cancelledEarly() {
		// Its CANCEL overtook it: the call never arrives anywhere.
		s.mu.Unlock()
		s.respond(tx, req, 487, "Request Terminated", nil)
		return
	}
	if _, dup := s.byCallID[string(l.id)]; dup {
		s.mu.Unlock()
		s.releaseMedia(l.m)
		s.respond(tx, req, 482, "Loop Detected", nil)
		return
	}
	s.inLegs[l.id] = l
	s.byCallID[string(l.id)] = dialogRef{in: l}
	arr.leg = l
	s.mu.Unlock()

	l.mu.Lock()
	s.report(media.CallArrived{FactBase: media.FactBase{At: s.now()}, Leg: l.id, Caller: l.caller, Hotline: l.hotline})
	l.mu.Unlock()
	s.log.Info("call arrived", "leg", l.id, "caller", l.caller, "hotline", l.hotline)

	if !tx.OnCancel(l.onCancel) {
		l.onCancel(nil) // CANCELled (or gone) before we could listen
	}
	l.serve()
}

// serve waits for the INVITE transaction's outcome.
func (l *inLeg) serve() {
	select {
	case <-l.answered:
		l.awaitAck()
	case <-l.ended:
	case <-l.tx.Done():
		l.endWith(media.CauseFailed, 0)
	case <-l.s.baseCtx.Done():
		l.endWith(media.CauseFailed, 503)
	}
}

// awaitAck retransmits the 2xx until the ACK (RFC 3261 section 13.3.1.4,
// RFC 6026: the TU, not the transaction, retransmits 2xx). Without an ACK
// after 64*T1 the dialog is torn down with a BYE.
func (l *inLeg) awaitAck() {
	interval := sip.T1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	reliable := isReliable(l.invite.Transport())
	for {
		select {
		case <-l.acked:
			return
		case <-l.ended:
			return
		case <-l.s.baseCtx.Done():
			return
		case <-giveUp.C:
			l.s.log.Warn("no ACK for 200 OK", "leg", l.id)
			_ = l.hangup(media.CauseFailed)
			return
		case <-timer.C:
			if !reliable {
				l.mu.Lock()
				res := l.answer
				l.mu.Unlock()
				l.s.send(l.tx, res)
			}
			interval = min(2*interval, sip.T2)
			timer.Reset(interval)
		}
	}
}

// onCancel runs when the caller CANCELs (sipgo has already answered the
// CANCEL and sends 487). It runs inside the INVITE transaction with the
// transaction's lock held, while ring and answer send on that transaction
// holding l.mu: waiting for l.mu here would deadlock, so the leg is
// finished on its own goroutine.
func (l *inLeg) onCancel(*sip.Request) {
	if !l.s.goBackground(l.finishCancelled) {
		go l.finishCancelled() // shutting down: endAllCalls waits on l.mu too
	}
}

func (l *inLeg) finishCancelled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		l.finishLocked(media.CauseCancelled, false)
	case inAnswering, inConfirmed, inEnded:
		// Too late to cancel: the 2xx won (RFC 3261 section 9.2).
	}
}

// finishLocked marks the leg ended and reports it. Caller holds l.mu.
// keepDialog leaves the Call-ID matchable until our BYE is done, so the
// late ACK it waits for still finds the leg.
func (l *inLeg) finishLocked(cause media.Cause, keepDialog bool) {
	l.state = inEnded
	close(l.ended)
	l.session.end() // lock ordering is leg → session timer
	l.s.releaseMedia(l.m)
	if l.dlg != nil {
		l.s.dropDialog(l.id)
	}
	l.s.report(media.LegEnded{FactBase: media.FactBase{At: l.s.now()}, Leg: l.id, Cause: cause})
	if !keepDialog {
		l.s.forget(string(l.id), l.id)
	}
}

// response builds a response to the INVITE carrying our To tag.
func (l *inLeg) response(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(l.invite, code, reason, body)
	if to := res.To(); to != nil {
		to.Params.Add("tag", l.localTag)
	}
	if code > 100 && code < 300 {
		res.AppendHeader(l.s.contactHeader(l.invite.Transport()))
	}
	if code >= 200 && code < 300 {
		res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
		addTimerHeaders(res, l.session.terms, true)
	}
	if body != nil {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	return res
}

// ring sends 180 Ringing (Hold ringback).
func (l *inLeg) ring() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		l.state = inRinging
		l.s.send(l.tx, l.response(180, "Ringing", nil))
		return nil
	case inAnswering, inConfirmed:
		return fmt.Errorf("sip: leg %s already answered: %w", l.id, media.ErrNotSupported)
	case inEnded:
		return media.ErrLegGone
	}
	return nil
}

// connect gives the caller agent's SDP: the 200 OK the first time, a
// re-INVITE afterwards (transfer).
func (l *inLeg) connect(agent media.LegID, sdp []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		l.state = inAnswering
		l.connected = agent
		l.answer = l.response(200, "OK", sdp)
		l.dlg = uasDialog(l.invite, l.localTag, sdp)
		l.saveLocked()
		close(l.answered)
		l.s.send(l.tx, l.answer)
		return nil
	case inAnswering, inConfirmed:
		if l.connected == agent {
			return nil
		}
		l.connected = agent
		if l.dlg != nil {
			l.dlg.ours = sdp
			l.saveLocked()
		}
		if !l.s.goBackground(func() { l.reinvite(sdp) }) {
			return media.ErrMediaUnavailable
		}
		return nil
	case inEnded:
		return media.ErrLegGone
	}
	return nil
}

// earlyMedia sends 183 Session Progress with the anchored SDP, once: an
// unanswered caller hears what the anchor plays (ringback, music) without
// being answered (README.md, "Media on the built-in SIP path").
func (l *inLeg) earlyMedia() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		if !l.early {
			l.early = true
			l.state = inRinging
			if l.m.lateOffer {
				// No offer from the caller, and an unreliable 1xx cannot
				// carry ours to an answer: the caller's phone rings back
				// itself until the 200 OK.
				l.s.send(l.tx, l.response(180, "Ringing", nil))
				return nil
			}
			l.s.send(l.tx, l.response(183, "Session Progress", l.m.sdp))
		}
		return nil
	case inAnswering, inConfirmed:
		return nil
	case inEnded:
		return media.ErrLegGone
	}
	return nil
}

// answerAnchored answers the caller with the anchored SDP (200 OK); a
// later agent change is a change of routes in the mixer, not a
// re-INVITE.
func (l *inLeg) answerAnchored() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		l.state = inAnswering
		l.answer = l.response(200, "OK", l.m.sdp)
		l.dlg = uasDialog(l.invite, l.localTag, l.m.sdp)
		close(l.answered)
		l.s.send(l.tx, l.answer)
		l.m.ml.WatchInactivity(true)
		return nil
	case inAnswering, inConfirmed:
		return nil
	case inEnded:
		return media.ErrLegGone
	}
	return nil
}

// hangup ends the leg from our side: a final response while unanswered,
// BYE (once ACKed) after.
func (l *inLeg) hangup(cause media.Cause) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		code, reason := media.SIPStatus(cause)
		l.s.send(l.tx, l.response(code, reason, nil))
		l.finishLocked(cause, false)
	case inAnswering, inConfirmed:
		l.finishLocked(cause, true)
		if !l.s.goBackground(l.bye) {
			l.s.forget(string(l.id), l.id)
		}
	case inEnded:
	}
	return nil
}

// endWith ends the leg because of a local failure (transaction gone,
// shutdown), answering with code when still possible.
func (l *inLeg) endWith(cause media.Cause, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inProceeding, inRinging:
		if code != 0 {
			l.s.send(l.tx, l.response(code, "Service Unavailable", nil))
		}
		l.finishLocked(cause, false)
	case inAnswering, inConfirmed, inEnded:
	}
}

// onAck confirms the dialog. For a late-offer caller the ACK carries the
// answer to the offer in our 200 OK; without a usable one the call
// cannot carry audio and is ended with a BYE (RFC 3261 section 13.2.1).
func (l *inLeg) onAck(body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inAnswering:
		l.state = inConfirmed
		close(l.acked)
		l.session.start() // lock ordering is leg → session timer
		if l.m != nil && l.m.lateOffer {
			if err := l.m.takeLateAnswer(body); err != nil {
				l.s.log.Info("late-offer caller's ACK has no usable answer; ending the call", "leg", l.id, "err", err)
				l.finishLocked(media.CauseFailed, true)
				if !l.s.goBackground(l.bye) {
					l.s.forget(string(l.id), l.id)
				}
			}
		}
	case inEnded:
		// ACK after we hung up in answering state: the BYE is waiting on it.
		select {
		case <-l.acked:
		default:
			close(l.acked)
		}
	case inProceeding, inRinging, inConfirmed:
	}
}

// onBye: the caller hung up.
func (l *inLeg) onBye() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case inAnswering, inConfirmed:
		l.finishLocked(media.CauseNormal, false)
		return true
	case inProceeding, inRinging, inEnded:
	}
	return false
}

// inDialogRequest builds a request we send to the caller inside the
// dialog (RFC 3261 section 12.2.1.1): our tag in From, theirs in To.
func (l *inLeg) inDialogRequest(method sip.RequestMethod) *sip.Request {
	l.mu.Lock()
	d := l.dlg
	seq, renew := d.next()
	if renew {
		l.saveLocked()
	}
	l.mu.Unlock()
	return l.s.dialogRequest(d, method, seq)
}

// saveLocked stores the leg's dialog (dialogs.go). Caller holds l.mu.
func (l *inLeg) saveLocked() {
	if l.state == inEnded {
		return
	}
	l.s.saveDialog(l.id, l.dlg, func(r StoredDialog) StoredDialog {
		r.Inbound, r.Peer, r.Caller, r.Hotline = true, l.connected, l.caller, l.hotline
		return r
	}, l.session)
}

// waitAcked waits for the ACK of our 2xx (a callee must not send BYE or a
// re-INVITE before it, RFC 3261 section 15).
func (l *inLeg) waitAcked() bool {
	t := time.NewTimer(64 * sip.T1)
	defer t.Stop()
	select {
	case <-l.acked:
		return true
	case <-t.C:
		return true // the transaction timed out: allowed to proceed
	case <-l.s.baseCtx.Done():
		return false
	}
}

// bye sends BYE to the caller and waits for its answer.
func (l *inLeg) bye() {
	defer l.s.forget(string(l.id), l.id)
	if !l.waitAcked() {
		return
	}
	req := l.inDialogRequest(sip.BYE)
	if _, err := l.s.do(req); err != nil {
		l.s.log.Info("BYE to caller failed", "leg", l.id, "err", err)
	}
}

// reinvite offers the caller a new agent's SDP (transfer).
func (l *inLeg) reinvite(sdp []byte) {
	if !l.waitAcked() {
		return
	}
	req := l.inDialogRequest(sip.INVITE)
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.SetBody(sdp)
	res, err := l.s.do(req)
	if err != nil {
		l.s.log.Warn("re-INVITE to caller failed", "leg", l.id, "err", err)
		return
	}
	if !res.IsSuccess() {
		l.s.log.Warn("re-INVITE refused", "leg", l.id, "status", res.StatusCode)
		return
	}
	l.s.sendAck(req, res)
}

// handleReinvite answers an in-dialog INVITE (session refresh, hold) from
// either side with the SDP that side already has (signalling only: the
// path cannot renegotiate media without a media server, so the session
// stays as is) or the anchor's answer for that leg alone.
func (s *Server) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	res, ok := s.refreshAnswer(req, tx)
	if !ok {
		return
	}
	s.send(tx, res)
	select { // the 2xx is ACKed outside the transaction; wait briefly for it
	case <-tx.Acks():
	case <-tx.Done():
	case <-time.After(sip.T1):
	}
}

// handleUpdate answers an UPDATE (RFC 3311) inside a dialog: a session
// refresh (RFC 4028) or, with a body, an offer answered like a
// re-INVITE's.
func (s *Server) handleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if res, ok := s.refreshAnswer(req, tx); ok {
		s.send(tx, res)
	}
}

// refreshAnswer builds the 2xx to a re-INVITE or UPDATE from either side
// of a call and notes the refresh on that dialog's session timer. It
// answers the request itself (481, 488) and returns false when there is
// no 2xx to send.
func (s *Server) refreshAnswer(req *sip.Request, tx sip.ServerTransaction) (*sip.Response, bool) {
	s.mu.Lock()
	ref, ok := s.byCallID[callIDOf(req)]
	s.mu.Unlock()
	var sdp []byte
	var session *sessionDialog
	offer := req.Body()
	switch {
	case ok && ref.in != nil:
		l := ref.in
		session = l.session
		l.mu.Lock()
		if l.m != nil && len(offer) > 0 {
			body, code, err := s.reanswer(l.m, offer)
			l.mu.Unlock()
			if err != nil {
				s.log.Info("offer from caller refused", "leg", l.id, "method", req.Method, "err", err)
				s.respond(tx, req, code, "Not Acceptable Here", nil)
				return nil, false
			}
			sdp = body
		} else {
			switch {
			case l.m != nil:
				sdp = l.m.sdp
			case l.dlg != nil:
				sdp = l.dlg.ours
			}
			l.mu.Unlock()
		}
	case ok && ref.branch != nil:
		l := ref.branch.leg
		l.mu.Lock()
		if l.winner == ref.branch {
			session = l.session
		}
		if l.m != nil && len(offer) > 0 {
			body, code, err := s.reanswer(l.m, offer)
			l.mu.Unlock()
			if err != nil {
				s.log.Info("offer from device refused", "leg", l.id, "method", req.Method, "err", err)
				s.respond(tx, req, code, "Not Acceptable Here", nil)
				return nil, false
			}
			sdp = body
		} else {
			sdp = l.offer
			l.mu.Unlock()
		}
	default:
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return nil, false
	}
	if req.Method == sip.UPDATE && len(offer) == 0 {
		sdp = nil // a refresh without an offer gets no answer
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", sdp)
	res.AppendHeader(s.contactHeader(req.Transport()))
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	if sdp != nil {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	if session != nil {
		addTimerHeaders(res, session.terms, session.weUAS)
		session.peerRefreshed()
	}
	return res, true
}

// forget drops a Call-ID from the dialog table.
func (s *Server) forget(callID string, leg media.LegID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byCallID, callID)
	if l, ok := s.inLegs[leg]; ok {
		delete(s.inLegs, leg)
		for k, v := range s.bound {
			if v == l {
				delete(s.bound, k)
			}
		}
	}
}
