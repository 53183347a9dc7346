package sip

// Requests callfloor originates outside the INVITE server transactions:
// ACK, CANCEL and BYE, and the client transaction helper they share.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// do sends req in a client transaction and returns the final response,
// giving up after Timer F / B (64*T1).
func (s *Server) do(req *sip.Request) (*sip.Response, error) {
	return s.doWithin(req, 64*sip.T1)
}

// doWithin is do with its own deadline (a session refresh must not wait
// 32 s to learn that a peer is gone).
func (s *Server) doWithin(req *sip.Request, limit time.Duration) (*sip.Response, error) {
	if err := s.baseCtx.Err(); err != nil {
		return nil, fmt.Errorf("sip: send %s: shutting down: %w", req.Method, err)
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, limit)
	defer cancel()
	tx, err := s.cli.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		return nil, fmt.Errorf("sip: send %s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("sip: %s: %w", req.Method, tx.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("sip: %s: no final answer in %s: %w", req.Method, limit, ctx.Err())
		}
	}
}

// sendAck acknowledges a 2xx to an INVITE we sent (RFC 3261 section
// 13.2.2.4): a new request straight to the transport.
func (s *Server) sendAck(invite *sip.Request, res *sip.Response) {
	target := invite.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	ack := sip.NewRequest(sip.ACK, *target.Clone())
	ack.AppendHeader(sip.HeaderClone(invite.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(invite.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(s.contactHeader(invite.Transport()))
	s.prepare(ack, invite.Transport(), invite.Destination())
	if err := s.cli.WriteRequest(ack, noBuild); err != nil {
		s.log.Info("ACK failed", "call_id", callIDOf(invite), "err", err)
	}
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
	if _, err := s.do(s.branchRequest(b, sip.BYE)); err != nil {
		s.log.Info("BYE to agent failed", "call_id", b.callID, "err", err)
	}
}

// branchRequest builds a request we send inside an answered branch's
// dialog (RFC 3261 section 12.2.1.1): to the device's Contact, our From
// tag, its To tag, the next CSeq.
func (s *Server) branchRequest(b *branch, method sip.RequestMethod) *sip.Request {
	l := b.leg
	l.mu.Lock()
	d := b.dlg
	seq, renew := d.next()
	if renew && l.winner == b {
		l.saveLocked()
	}
	l.mu.Unlock()
	return s.dialogRequest(d, method, seq)
}

// hostPort is where a SIP URI points, with the default port filled in.
func hostPort(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(port))
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
