package sip

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// allowedMethods is our Allow header: every method handleRequest serves.
const allowedMethods = "INVITE, ACK, BYE, CANCEL, REGISTER, OPTIONS, UPDATE"

// maxBody bounds message bodies we accept (SDP is a few hundred bytes).
const maxBody = 64 << 10

// tracked is the single entry point for every request sipgo hands us: it
// counts the handler for shutdown and blocks until the handler — and so
// the transaction — is done.
func (s *Server) tracked(req *sip.Request, tx sip.ServerTransaction) {
	if !s.work.enter() {
		return // shutting down: the transports close next
	}
	defer s.work.leave()
	s.handleRequest(req, tx)
}

// handleRequest validates req and routes it by method. Exhaustive over the
// methods we serve; everything else is 405.
func (s *Server) handleRequest(req *sip.Request, tx sip.ServerTransaction) {
	if code, reason := validateRequest(req); code != 0 {
		if !req.IsAck() {
			s.respond(tx, req, code, reason, nil)
		}
		return
	}
	switch req.Method {
	case sip.INVITE:
		s.handleInvite(req, tx)
	case sip.ACK:
		s.handleAck(req)
	case sip.BYE:
		s.handleBye(req, tx)
	case sip.CANCEL:
		// sipgo answers CANCELs that match a live INVITE transaction itself;
		// the rest may have overtaken their INVITE.
		s.handleCancel(req, tx)
	case sip.REGISTER:
		s.reg.handle(req, tx)
	case sip.UPDATE:
		s.handleUpdate(req, tx)
	case sip.OPTIONS:
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
		res.AppendHeader(sip.NewHeader("Supported", "timer"))
		s.send(tx, res)
	default:
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
		s.send(tx, res)
	}
}

// validateRequest checks what every handler relies on (RFC 3261 section
// 8.2). It returns 0 when the request is usable, else the status to send.
func validateRequest(req *sip.Request) (int, string) {
	switch {
	case req.CallID() == nil || strings.TrimSpace(req.CallID().Value()) == "":
		return 400, "Missing Call-ID"
	case req.From() == nil:
		return 400, "Missing From"
	case req.To() == nil:
		return 400, "Missing To"
	case req.Via() == nil:
		return 400, "Missing Via"
	case req.CSeq() == nil:
		return 400, "Missing CSeq"
	case req.CSeq().MethodName != req.Method:
		return 400, "CSeq Method Mismatch"
	case len(req.Body()) > maxBody:
		return 413, "Request Entity Too Large"
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return 400, "Bad Content-Length"
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && !req.IsAck() {
		return 483, "Too Many Hops"
	}
	if req.Method == sip.INVITE || req.Method == sip.REGISTER {
		if tag, _ := req.From().Params.Get("tag"); tag == "" {
			return 400, "Missing From Tag"
		}
	}
	return 0, ""
}

// respond sends a response built from req.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	s.send(tx, res)
}

func (s *Server) send(tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "status", res.StatusCode, "call_id", callIDOf(res), "err", err)
	}
}

// trunkAllowed reports whether the request's source is an allowed trunk
// address.
func (s *Server) trunkAllowed(req *sip.Request) bool {
	a, err := netip.ParseAddr(hostOf(req.Source()))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.trunkNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// admitTrunk decides whether an initial INVITE may enter routing:
// allowed source address, or digest credentials of the trunk user. It
// answers the INVITE itself when it refuses.
func (s *Server) admitTrunk(req *sip.Request, tx sip.ServerTransaction) bool {
	if s.trunkAllowed(req) {
		return true
	}
	if s.cfg.TrunkUser == "" {
		s.respond(tx, req, 403, "Forbidden", nil)
		return false
	}
	authz := ""
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	pw := func(_ context.Context, user string) (string, bool, error) {
		return s.cfg.TrunkPassword, user == s.cfg.TrunkUser, nil
	}
	verdict, stale, _, err := s.auth.verify(s.baseCtx, string(req.Method), authz, req.Source(), s.cfg.TrunkUser, pw)
	if err != nil {
		s.log.Warn("trunk auth", "err", err)
	}
	return s.applyVerdict(tx, req, verdict, stale)
}

// applyVerdict answers a request the authenticator did not accept and
// reports whether it was accepted.
func (s *Server) applyVerdict(tx sip.ServerTransaction, req *sip.Request, v authVerdict, stale bool) bool {
	switch v {
	case authOK:
		return true
	case authChallenge:
		s.respond(tx, req, 401, "Unauthorized", nil, sip.NewHeader("WWW-Authenticate", s.auth.challenge(hostOf(req.Source()), stale)))
	case authForbidden:
		s.respond(tx, req, 403, "Forbidden", nil)
	case authBad:
		s.respond(tx, req, 400, "Bad Authorization", nil)
	}
	return false
}

func callIDOf(m sip.Message) string {
	if h := m.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func tagOf(p sip.HeaderParams) string {
	t, _ := p.Get("tag")
	return t
}

func lower(s string) string            { return strings.ToLower(s) }
func upper(s string) string            { return strings.ToUpper(s) }
func equalFold(a, b string) bool       { return strings.EqualFold(a, b) }
func isReliable(transport string) bool { return sip.IsReliable(lower(transport)) }
