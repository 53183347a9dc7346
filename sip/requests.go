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

	"github.com/emiago/sipgo/sip"
)

// do sends req in a client transaction and returns the final response.
func (s *Server) do(req *sip.Request) (*sip.Response, error) {
	if err := s.baseCtx.Err(); err != nil {
		return nil, fmt.Errorf("sip: send %s: shutting down: %w", req.Method, err)
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, 64*sip.T1)
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
			return nil, ctx.Err()
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
