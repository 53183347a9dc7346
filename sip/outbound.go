package sip

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo/sip"
)

// defaultRingTimeout applies when a DialRequest names none.
const defaultRingTimeout = 30 * time.Second

// outState is a dialled leg's state: the UAC side of one INVITE per
// device (RFC 3261 section 13.2), seen by routing as one leg.
type outState int

const (
	outCalling  outState = iota // INVITEs sent, nothing heard
	outRinging                  // some device alerts (180/183)
	outAnswered                 // a device answered; the others are CANCELled
	outEnded                    // over
)

func (st outState) String() string {
	switch st {
	case outCalling:
		return "calling"
	case outRinging:
		return "ringing"
	case outAnswered:
		return "answered"
	case outEnded:
		return "ended"
	}
	return "unknown"
}

// outLeg is one Dial: INVITEs forked to every device of the target.
type outLeg struct {
	s     *Server
	id    media.LegID
	req   media.DialRequest
	offer []byte // the caller's SDP offer, passed through (or ours, anchored)
	m     *legMedia

	mu       sync.Mutex
	monitor  *monitorSpec // a supervisor's leg: how it joins on answer
	state    outState
	branches []*branch
	winner   *branch
	timer    *time.Timer
	session  *sessionDialog // the answered branch's session timer
	ended    chan struct{}  // closed when the leg ended
}

// branch is one INVITE to one contact, its own SIP dialog (Call-ID).
type branch struct {
	leg     *outLeg
	callID  string
	invite  *sip.Request
	tx      sip.ClientTransaction
	transp  string
	dest    string
	ringing bool // got a provisional: CANCEL may be sent (RFC 3261 9.1)
	final   int  // final status, 0 while pending
	cancel  bool // CANCEL wanted (sent once a provisional arrives)
	res     *sip.Response
	cseq    uint32
	dlg     *dialog // the winner's dialog, from its 2xx on (dialogs.go)
}

// dialTarget is where one branch goes.
type dialTarget struct {
	uri       sip.Uri
	transport string
	dest      string
	toUser    string
}

// Dial rings req.Target on every registered contact (or the outbound
// trunk for the phone mode / req.Number) and returns the leg at once.
func (s *Server) Dial(ctx context.Context, req media.DialRequest) (media.LegID, error) {
	return s.dial(ctx, req, nil)
}

// dial is Dial; mon, when set, makes the leg a supervisor's.
func (s *Server) dial(ctx context.Context, req media.DialRequest, mon *monitorSpec) (media.LegID, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.draining.Load() || !s.running.Load() {
		return "", fmt.Errorf("sip: not serving: %w", media.ErrMediaUnavailable)
	}
	targets, err := s.dialTargets(req)
	if err != nil {
		return "", err
	}
	id := media.LegID("dial-" + randomID())
	var offer []byte
	var m *legMedia
	if s.opts.anchor != nil {
		if m, err = s.anchorDial(id, req); err != nil {
			return "", err
		}
		offer = m.sdp
	} else if c := s.customerFor(req); c != nil {
		offer = c.offer
	}
	l := &outLeg{s: s, id: id, req: req, offer: offer, m: m, monitor: mon, ended: make(chan struct{})}
	for i, t := range targets {
		l.branches = append(l.branches, &branch{leg: l, callID: fmt.Sprintf("%s-%d", l.id, i), transp: t.transport, dest: t.dest, cseq: 1})
	}
	s.mu.Lock()
	s.outLegs[l.id] = l
	for _, b := range l.branches {
		s.byCallID[b.callID] = dialogRef{branch: b}
	}
	s.mu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	started := 0
	for i, b := range l.branches {
		if err := l.startBranch(b, targets[i]); err != nil {
			s.log.Info("dial branch failed", "leg", l.id, "contact", targets[i].uri.String(), "err", err)
			b.final = 503
			continue
		}
		started++
	}
	if started == 0 {
		l.state = outEnded
		s.forgetOut(l)
		s.releaseMedia(l.m)
		return "", fmt.Errorf("sip: no contact of %q took the INVITE: %w", req.Target.AgentID, media.ErrUnreachable)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = defaultRingTimeout
	}
	l.timer = time.AfterFunc(timeout, l.onTimeout)
	s.log.Info("dialing", "leg", l.id, "agent", req.Target.AgentID, "branches", started)
	return l.id, nil
}

// startBranch sends the INVITE of b. Caller holds l.mu.
func (l *outLeg) startBranch(b *branch, t dialTarget) error {
	s := l.s
	inv := sip.NewRequest(sip.INVITE, *t.uri.Clone())
	callerID := l.req.CallerID
	from := &sip.FromHeader{DisplayName: callerID, Address: sip.Uri{Scheme: "sip", User: sanitizeUser(callerID), Host: s.cfg.Domain}}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: t.toUser, Host: s.cfg.Domain}}
	cid := sip.CallIDHeader(b.callID)
	inv.AppendHeader(from)
	inv.AppendHeader(to)
	inv.AppendHeader(&cid)
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: b.cseq, MethodName: sip.INVITE})
	inv.AppendHeader(s.contactHeader(t.transport))
	// RFC 4028 section 7.1: say we do session timers, let the device pick
	// the interval (no Session-Expires, so never a 422).
	inv.AppendHeader(sip.NewHeader("Supported", "timer"))
	inv.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	if l.offer != nil {
		ct := sip.ContentTypeHeader("application/sdp")
		inv.AppendHeader(&ct)
		inv.SetBody(l.offer)
	}
	s.prepare(inv, t.transport, t.dest)
	ctx, cancel := context.WithTimeout(s.baseCtx, 5*time.Second)
	defer cancel()
	tx, err := s.cli.TransactionRequest(ctx, inv, noBuild)
	if err != nil {
		return err
	}
	b.invite, b.tx = inv, tx
	if !s.goBackground(func() { l.readBranch(b) }) {
		tx.Terminate()
		return media.ErrMediaUnavailable
	}
	return nil
}

// readBranch feeds b's responses into the leg until a final one.
func (l *outLeg) readBranch(b *branch) {
	for {
		select {
		case res := <-b.tx.Responses():
			if l.onResponse(b, res) {
				return
			}
		case <-b.tx.Done():
			l.onBranchFinal(b, 408) // timer B or transport error
			return
		case <-l.s.baseCtx.Done():
			b.tx.Terminate()
			return
		}
	}
}

// onResponse handles one response of branch b; true when it was final.
func (l *outLeg) onResponse(b *branch, res *sip.Response) bool {
	switch {
	case res.IsProvisional():
		l.onProvisional(b, res)
		return false
	case res.IsSuccess():
		l.onSuccess(b, res)
		return true
	default:
		l.onBranchFinal(b, res.StatusCode)
		return true
	}
}

func (l *outLeg) onProvisional(b *branch, res *sip.Response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.ringing = true
	if b.cancel {
		l.s.goBackground(func() { l.s.sendCancel(b.invite) })
		b.cancel = false
	}
	if res.StatusCode != 180 && res.StatusCode != 183 {
		return
	}
	switch l.state {
	case outCalling:
		l.state = outRinging
		l.s.report(media.LegRinging{FactBase: media.FactBase{At: l.s.now()}, Leg: l.id})
	case outRinging, outAnswered, outEnded:
	}
}

// onSuccess: a device answered. The first 2xx wins; a late one from a
// cancelled branch is ACKed and hung up (RFC 3261 section 15).
func (l *outLeg) onSuccess(b *branch, res *sip.Response) {
	l.s.sendAck(b.invite, res)
	ackAgain := func(r *sip.Response) {
		if r.IsSuccess() {
			l.s.sendAck(b.invite, r)
		}
	}
	b.tx.OnRetransmission(ackAgain)

	l.mu.Lock()
	defer l.mu.Unlock()
	b.final, b.res = res.StatusCode, res
	b.dlg = uacDialog(b, res, l.offer)
	switch l.state {
	case outCalling, outRinging:
		l.state = outAnswered
		l.winner = b
		l.timer.Stop()
		if l.m != nil {
			l.s.applyAnswer(l, res.Body())
			l.s.onAnchoredAnswer(l)
		}
		l.s.report(media.LegAnswered{FactBase: media.FactBase{At: l.s.now()}, Leg: l.id})
		l.cancelOthersLocked(b)
		l.session = newSessionDialog(l.s, l.id, l.s.opts.session.termsFromAnswer(res), false,
			func(m sip.RequestMethod) *sip.Request { return l.s.branchRequest(b, m) },
			func() { l.hangup(media.CauseFailed) })
		l.saveLocked()
		l.session.start() // lock ordering is leg → session timer
	case outAnswered, outEnded:
		l.s.goBackground(func() { l.s.byeBranch(b) })
	}
}

// onBranchFinal: a branch failed (or was cancelled). When every branch
// has failed and nobody answered, the leg ends with the most telling
// cause.
func (l *outLeg) onBranchFinal(b *branch, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b.final == 0 {
		b.final = code
	}
	b.cancel = false
	l.s.forgetCallID(b.callID)
	switch l.state {
	case outCalling, outRinging:
		for _, o := range l.branches {
			if o.final == 0 {
				return
			}
		}
		l.endLocked(causeOf(l.branches))
	case outAnswered, outEnded:
	}
}

// onTimeout is RONA: nobody answered within the ring timeout.
func (l *outLeg) onTimeout() {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case outCalling, outRinging:
		l.cancelOthersLocked(nil)
		l.endLocked(media.CauseNoAnswer)
	case outAnswered, outEnded:
	}
}

// hangup ends the leg on routing's request.
func (l *outLeg) hangup(cause media.Cause) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cause == "" {
		cause = media.CauseNormal
	}
	switch l.state {
	case outCalling, outRinging:
		l.cancelOthersLocked(nil)
		l.endLocked(cause)
	case outAnswered:
		w := l.winner
		l.endLocked(cause)
		l.s.goBackground(func() { l.s.byeBranch(w) })
	case outEnded:
	}
}

// onBye: the answering device hung up.
func (l *outLeg) onBye(b *branch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case outAnswered:
		if l.winner == b {
			l.endLocked(media.CauseNormal)
		}
	case outCalling, outRinging, outEnded:
	}
	l.s.forgetCallID(b.callID)
}

// endLocked ends the leg and reports it once. Caller holds l.mu.
func (l *outLeg) endLocked(cause media.Cause) {
	l.state = outEnded
	close(l.ended)
	l.session.end() // lock ordering is leg → session timer
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.winner != nil && l.winner.dlg != nil {
		l.s.dropDialog(l.id)
	}
	l.s.report(media.LegEnded{FactBase: media.FactBase{At: l.s.now()}, Leg: l.id, Cause: cause})
	l.s.forgetOut(l)
	l.s.releaseMedia(l.m)
}

// cancelOthersLocked CANCELs every pending branch but keep.
func (l *outLeg) cancelOthersLocked(keep *branch) {
	for _, b := range l.branches {
		if b == keep || b.final != 0 || b.tx == nil {
			continue
		}
		if b.ringing {
			inv := b.invite
			l.s.goBackground(func() { l.s.sendCancel(inv) })
		} else {
			b.cancel = true // RFC 3261 section 9.1: wait for a provisional
		}
	}
}

// answerSDP is the winning device's SDP, nil until answered.
func (l *outLeg) answerSDP() ([]byte, outState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.winner == nil || l.winner.dlg == nil {
		return nil, l.state
	}
	return l.winner.dlg.theirs, l.state
}

// saveLocked stores the answered branch's dialog (dialogs.go). Caller
// holds l.mu.
func (l *outLeg) saveLocked() {
	if l.state != outAnswered || l.winner == nil {
		return
	}
	l.s.saveDialog(l.id, l.winner.dlg, func(r StoredDialog) StoredDialog {
		r.Call, r.Customer = l.req.CallID, l.req.Customer
		return r
	}, l.session)
}

func (s *Server) forgetCallID(id string) {
	s.mu.Lock()
	delete(s.byCallID, id)
	s.mu.Unlock()
}

// forgetOut drops l from the leg table; its answered branch stays
// matchable for BYE until hung up.
func (s *Server) forgetOut(l *outLeg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.outLegs, l.id)
	for _, b := range l.branches {
		if b != l.winner && b.final != 0 {
			delete(s.byCallID, b.callID)
		}
	}
}
