package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
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
	id    routing.LegID
	req   routing.DialRequest
	offer []byte // the caller's SDP offer, passed through

	mu       sync.Mutex
	state    outState
	branches []*branch
	winner   *branch
	timer    *time.Timer
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
func (s *Server) Dial(ctx context.Context, req routing.DialRequest) (routing.LegID, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.draining.Load() || !s.running.Load() {
		return "", fmt.Errorf("sip: not serving: %w", routing.ErrMediaUnavailable)
	}
	targets, err := s.dialTargets(req)
	if err != nil {
		return "", err
	}
	var offer []byte
	if c := s.customerFor(req); c != nil {
		offer = c.offer
	}
	l := &outLeg{s: s, id: routing.LegID("dial-" + randomID()), req: req, offer: offer}
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
		return "", fmt.Errorf("sip: no contact of %q took the INVITE: %w", req.Target.AgentID, routing.ErrUnreachable)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = defaultRingTimeout
	}
	l.timer = time.AfterFunc(timeout, l.onTimeout)
	s.log.Info("dialing", "leg", l.id, "agent", req.Target.AgentID, "branches", started)
	return l.id, nil
}

// dialTargets resolves where Dial sends INVITEs.
func (s *Server) dialTargets(req routing.DialRequest) ([]dialTarget, error) {
	number := req.Number
	if number == "" && req.Target.Distribution == presence.DistPhone {
		number = req.Target.Phone
	}
	if req.Number != "" || req.Target.Distribution == presence.DistPhone {
		if number == "" {
			return nil, fmt.Errorf("sip: agent %q has no phone number: %w", req.Target.AgentID, routing.ErrUnreachable)
		}
		if s.cfg.OutboundTrunk == "" {
			return nil, fmt.Errorf("sip: no outbound trunk configured: %w", routing.ErrUnreachable)
		}
		raw := strings.ReplaceAll(s.cfg.OutboundTrunk, "{number}", number)
		var u sip.Uri
		if err := sip.ParseUri(raw, &u); err != nil {
			return nil, fmt.Errorf("sip: outbound trunk uri %q: %w", raw, err)
		}
		tp := "udp"
		if v, ok := u.UriParams.Get("transport"); ok && v != "" {
			tp = lower(v)
		}
		return []dialTarget{{uri: u, transport: tp, dest: hostPort(u), toUser: number}}, nil
	}
	bs := s.reg.lookup(req.Target.AgentID)
	if len(bs) == 0 {
		return nil, fmt.Errorf("sip: agent %q has no registered contact: %w", req.Target.AgentID, routing.ErrUnreachable)
	}
	out := make([]dialTarget, 0, len(bs))
	for _, b := range bs {
		// UDP: the Contact's address (RFC 3263). Connection transports:
		// the connection the REGISTER came over, the only way back to a
		// device that cannot accept connections.
		dest := b.source
		if b.transport == "udp" {
			dest = hostPort(b.uri)
		}
		out = append(out, dialTarget{uri: b.uri, transport: b.transport, dest: dest, toUser: req.Target.AgentID})
	}
	return out, nil
}

// customerFor finds the customer leg whose SDP offer the agents get:
// routing's call id when bound already or equal to a leg id, else the
// not yet bound caller with the matching number (oldest first), else the
// only unbound caller. Without one the INVITE carries no SDP (late
// offer), which suits outbound calls that start by ringing the agent.
func (s *Server) customerFor(req routing.DialRequest) *inLeg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.bound[req.CallID]; ok {
		return l
	}
	if l, ok := s.inLegs[routing.LegID(req.CallID)]; ok {
		s.bound[req.CallID] = l
		return l
	}
	var best, onlyUnbound *inLeg
	unbound := 0
	for _, l := range s.inLegs {
		if s.isBound(l) {
			continue
		}
		unbound++
		onlyUnbound = l
		if l.caller != req.CallerID {
			continue
		}
		if best == nil || l.arrived.Before(best.arrived) {
			best = l
		}
	}
	if best == nil && unbound == 1 {
		best = onlyUnbound // the caller id was rewritten, but there is one candidate
	}
	if best != nil && req.CallID != "" {
		s.bound[req.CallID] = best
	}
	return best
}

func (s *Server) isBound(l *inLeg) bool {
	for _, v := range s.bound {
		if v == l {
			return true
		}
	}
	return false
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
		return routing.ErrMediaUnavailable
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
		l.s.report(routing.LegRinging{FactBase: routing.FactBase{At: l.s.now()}, Leg: l.id})
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
	switch l.state {
	case outCalling, outRinging:
		l.state = outAnswered
		l.winner = b
		l.timer.Stop()
		l.s.report(routing.LegAnswered{FactBase: routing.FactBase{At: l.s.now()}, Leg: l.id})
		l.cancelOthersLocked(b)
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
		l.endLocked(routing.CauseNoAnswer)
	case outAnswered, outEnded:
	}
}

// hangup ends the leg on routing's request.
func (l *outLeg) hangup(cause routing.Cause) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cause == "" {
		cause = routing.CauseNormal
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
			l.endLocked(routing.CauseNormal)
		}
	case outCalling, outRinging, outEnded:
	}
	l.s.forgetCallID(b.callID)
}

// endLocked ends the leg and reports it once. Caller holds l.mu.
func (l *outLeg) endLocked(cause routing.Cause) {
	l.state = outEnded
	if l.timer != nil {
		l.timer.Stop()
	}
	l.s.report(routing.LegEnded{FactBase: routing.FactBase{At: l.s.now()}, Leg: l.id, Cause: cause})
	l.s.forgetOut(l)
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
	if l.winner == nil || l.winner.res == nil {
		return nil, l.state
	}
	return l.winner.res.Body(), l.state
}

// causeOf picks the cause of a failed fork: busy or decline from any
// device beats timeouts, which beat unreachable.
func causeOf(bs []*branch) routing.Cause {
	best := routing.CauseUnreachable
	rank := map[routing.Cause]int{routing.CauseUnreachable: 0, routing.CauseFailed: 1, routing.CauseNoAnswer: 2, routing.CauseCancelled: 3, routing.CauseBusy: 4, routing.CauseRejected: 5}
	for _, b := range bs {
		c := causeForStatus(b.final)
		if rank[c] > rank[best] {
			best = c
		}
	}
	return best
}

// causeForStatus maps a final SIP status to a routing cause.
func causeForStatus(code int) routing.Cause {
	switch code {
	case 486, 600:
		return routing.CauseBusy
	case 603:
		return routing.CauseRejected
	case 480, 408:
		return routing.CauseNoAnswer
	case 487:
		return routing.CauseCancelled
	case 404, 410, 484, 502, 503, 504:
		return routing.CauseUnreachable
	}
	return routing.CauseFailed
}

// sendCancel CANCELs an INVITE we sent (RFC 3261 section 9.1): same
// Request-URI, Call-ID, From, To, CSeq number and top Via.
func (s *Server) sendCancel(inv *sip.Request) {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	if _, err := s.do(c); err != nil {
		s.log.Info("CANCEL failed", "call_id", callIDOf(inv), "err", err)
	}
}

// byeBranch hangs up an answered branch.
func (s *Server) byeBranch(b *branch) {
	defer s.forgetCallID(b.callID)
	res := b.res
	target := b.invite.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	bye := sip.NewRequest(sip.BYE, *target.Clone())
	bye.AppendHeader(sip.HeaderClone(b.invite.From()))
	bye.AppendHeader(sip.HeaderClone(res.To()))
	bye.AppendHeader(sip.HeaderClone(b.invite.CallID()))
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: b.cseq + 1, MethodName: sip.BYE})
	s.prepare(bye, b.transp, b.dest)
	if _, err := s.do(bye); err != nil {
		s.log.Info("BYE to agent failed", "call_id", b.callID, "err", err)
	}
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

// sanitizeUser keeps a caller id usable as a SIP URI user part.
func sanitizeUser(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '+' || r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "anonymous"
	}
	return b.String()
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hostPort is where a SIP URI points, with the default port filled in.
func hostPort(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(port))
}
