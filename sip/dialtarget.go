package sip

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/media"
)

// dialTargets resolves where Dial sends INVITEs: the trunk for a number,
// else every contact registered under each device the target's mode rings
// (media.Ring).
func (s *Server) dialTargets(req media.DialRequest) ([]dialTarget, error) {
	if req.Number != "" {
		return s.trunkTarget(req.Number)
	}
	eps, err := media.Ring(req.Target)
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	var out []dialTarget
	for _, ep := range eps {
		if ep.Kind == media.EndpointPhone {
			return s.trunkTarget(ep.Number)
		}
		for _, b := range s.reg.lookup(ep.User) {
			// UDP: the Contact's address (RFC 3263). Connection transports:
			// the connection the REGISTER came over, the only way back to a
			// device that cannot accept connections.
			dest := b.source
			if b.transport == "udp" {
				dest = hostPort(b.uri)
			}
			out = append(out, dialTarget{uri: b.uri, transport: b.transport, dest: dest, toUser: ep.User})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sip: agent %q has no registered %s device: %w", req.Target.AgentID, req.Target.Distribution, media.ErrUnreachable)
	}
	return out, nil
}

// trunkTarget is an external number dialled through the outbound trunk.
func (s *Server) trunkTarget(number string) ([]dialTarget, error) {
	if s.cfg.OutboundTrunk == "" {
		return nil, fmt.Errorf("sip: no outbound trunk configured: %w", media.ErrUnreachable)
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

// customerFor finds the customer leg whose SDP offer the agents get:
// the leg routing names (req.Customer); for a caller that names none,
// routing's call id when bound already or equal to a leg id, else the
// not yet bound caller with the matching number (oldest first), else the
// only unbound caller. Without one the INVITE carries no SDP (late
// offer), which suits outbound calls that start by ringing the agent.
func (s *Server) customerFor(req media.DialRequest) *inLeg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.inLegs[req.Customer]; ok && req.Customer != "" {
		if req.CallID != "" {
			s.bound[req.CallID] = l
		}
		return l
	}
	if l, ok := s.bound[req.CallID]; ok {
		return l
	}
	if l, ok := s.inLegs[media.LegID(req.CallID)]; ok {
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
