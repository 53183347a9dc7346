package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo/sip"
)

// maxBindings bounds contacts per address-of-record.
const maxBindings = 16

// binding is one registered contact of an agent (RFC 3261 section 10.3).
type binding struct {
	uri       sip.Uri
	key       string // uri.String(), the binding's identity
	expires   time.Time
	callID    string
	cseq      uint32
	transport string // transport the REGISTER came over
	source    string // host:port the REGISTER came from (reused to reach it)
}

// registrar is the location service: agent id → contacts.
type registrar struct {
	s    *Server
	mu   sync.Mutex
	aors map[string][]binding
}

func newRegistrar(s *Server) *registrar {
	return &registrar{s: s, aors: make(map[string][]binding)}
}

// errRegister carries the status a REGISTER is refused with.
type errRegister struct {
	code   int
	reason string
	hdrs   []sip.Header
}

func (e *errRegister) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// contactReq is one Contact of a REGISTER with its granted lifetime.
type contactReq struct {
	uri sip.Uri
	exp time.Duration
}

// handle processes one REGISTER (RFC 3261 section 10.3 steps 1-8).
func (r *registrar) handle(req *sip.Request, tx sip.ServerTransaction) {
	s := r.s
	user := req.To().Address.User
	if user == "" {
		s.respond(tx, req, 404, "Not Found", nil)
		return
	}
	authz := ""
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, 5*time.Second)
	defer cancel()
	verdict, stale, _, err := s.auth.verify(ctx, string(req.Method), authz, req.Source(), user, s.dir.Password)
	if err != nil {
		s.log.Warn("registrar: directory lookup failed", "user", user, "err", err)
		s.respond(tx, req, 500, "Server Internal Error", nil)
		return
	}
	if !s.applyVerdict(tx, req, verdict, stale) {
		if verdict == authForbidden {
			s.log.Info("registrar: refused", "user", user, "source", hostOf(req.Source()))
		}
		return
	}
	contacts, wildcard, rerr := r.parseContacts(req)
	if rerr == nil {
		rerr = r.apply(req, user, contacts, wildcard)
	}
	if rerr != nil {
		var e *errRegister
		if errors.As(rerr, &e) {
			s.respond(tx, req, e.code, e.reason, nil, e.hdrs...)
			return
		}
		s.respond(tx, req, 500, "Server Internal Error", nil)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := s.now()
	for _, b := range r.lookup(user) {
		c := &sip.ContactHeader{Address: b.uri, Params: sip.HeaderParams{{K: "expires", V: strconv.Itoa(secondsLeft(b.expires, now))}}}
		res.AppendHeader(c)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	s.send(tx, res)
}

// parseContacts reads the Contact and Expires headers.
func (r *registrar) parseContacts(req *sip.Request) ([]contactReq, bool, error) {
	cfg := r.s.cfg
	headerExp, hasHeaderExp := time.Duration(0), false
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return nil, false, &errRegister{code: 400, reason: "Bad Expires"}
		}
		headerExp, hasHeaderExp = time.Duration(n)*time.Second, true
	}
	hdrs := req.GetHeaders("Contact")
	var out []contactReq
	wildcard := false
	for _, h := range hdrs {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false, &errRegister{code: 400, reason: "Bad Contact"}
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		if c.Address.Host == "" {
			return nil, false, &errRegister{code: 400, reason: "Bad Contact"}
		}
		exp := defaultExpires
		if hasHeaderExp {
			exp = headerExp
		}
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				return nil, false, &errRegister{code: 400, reason: "Bad Contact Expires"}
			}
			exp = time.Duration(n) * time.Second
		}
		if exp != 0 && exp < cfg.MinExpires {
			// RFC 3261 section 10.3 step 7: too brief, say what we accept.
			return nil, false, &errRegister{code: 423, reason: "Interval Too Brief",
				hdrs: []sip.Header{sip.NewHeader("Min-Expires", strconv.Itoa(int(cfg.MinExpires/time.Second)))}}
		}
		if exp > cfg.MaxExpires {
			exp = cfg.MaxExpires
		}
		out = append(out, contactReq{uri: *c.Address.Clone(), exp: exp})
	}
	if wildcard && (len(hdrs) != 1 || !hasHeaderExp || headerExp != 0) {
		// RFC 3261 section 10.3 step 6.
		return nil, false, &errRegister{code: 400, reason: "Wildcard Contact Needs Expires 0 Alone"}
	}
	return out, wildcard, nil
}

// apply updates the bindings of user and reports what changed.
func (r *registrar) apply(req *sip.Request, user string, contacts []contactReq, wildcard bool) error {
	now := r.s.now()
	callID := callIDOf(req)
	cseq := req.CSeq().SeqNo
	var facts []media.DeviceState

	r.mu.Lock()
	cur := r.aors[user]
	if wildcard {
		for _, b := range cur {
			facts = append(facts, media.DeviceState{AgentID: user, Device: b.key})
		}
		cur = nil
	}
	next := make([]binding, len(cur))
	copy(next, cur)
	for _, c := range contacts {
		key := c.uri.String()
		i := indexBinding(next, key)
		if i >= 0 && next[i].callID == callID && cseq <= next[i].cseq {
			r.mu.Unlock()
			return &errRegister{code: 500, reason: "Out Of Order CSeq"}
		}
		if c.exp == 0 {
			if i >= 0 {
				next = append(next[:i], next[i+1:]...)
				facts = append(facts, media.DeviceState{AgentID: user, Device: key})
			}
			continue
		}
		b := binding{uri: c.uri, key: key, expires: now.Add(c.exp), callID: callID, cseq: cseq,
			transport: lower(req.Transport()), source: req.Source()}
		if i >= 0 {
			next[i] = b
		} else {
			if len(next) >= maxBindings {
				r.mu.Unlock()
				return &errRegister{code: 403, reason: "Too Many Contacts"}
			}
			next = append(next, b)
		}
		facts = append(facts, media.DeviceState{AgentID: user, Device: key})
	}
	if len(next) == 0 {
		delete(r.aors, user)
	} else {
		r.aors[user] = next
	}
	facts = stateFacts(facts, next, now)
	saved := append([]binding(nil), next...)
	r.mu.Unlock()

	if len(facts) > 0 {
		r.persist(user, saved)
	}
	for _, f := range facts {
		r.s.report(f)
	}
	return nil
}

// stateFacts fills Registered/Until from the user's remaining bindings:
// the agent stays registered while any contact is.
func stateFacts(facts []media.DeviceState, remaining []binding, now time.Time) []media.DeviceState {
	var until time.Time
	for _, b := range remaining {
		if b.expires.After(until) {
			until = b.expires
		}
	}
	for i := range facts {
		facts[i].At = now
		facts[i].Registered = len(remaining) > 0
		if facts[i].Registered {
			facts[i].Until = until
		}
	}
	return facts
}

// sweep drops expired bindings.
func (r *registrar) sweep(now time.Time) {
	var facts []media.DeviceState
	changed := map[string][]binding{}
	r.mu.Lock()
	for user, bs := range r.aors {
		var gone []media.DeviceState
		keep := bs[:0:0]
		for _, b := range bs {
			if now.Before(b.expires) {
				keep = append(keep, b)
			} else {
				gone = append(gone, media.DeviceState{AgentID: user, Device: b.key})
			}
		}
		if len(gone) == 0 {
			continue
		}
		if len(keep) == 0 {
			delete(r.aors, user)
		} else {
			r.aors[user] = keep
		}
		changed[user] = keep
		facts = append(facts, stateFacts(gone, keep, now)...)
	}
	r.mu.Unlock()
	for user, keep := range changed {
		r.persist(user, keep)
	}
	for _, f := range facts {
		r.s.log.Info("registrar: contact expired", "user", f.AgentID, "contact", f.Device)
		r.s.report(f)
	}
}

// lookup returns user's live bindings.
func (r *registrar) lookup(user string) []binding {
	now := r.s.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []binding
	for _, b := range r.aors[user] {
		if now.Before(b.expires) {
			out = append(out, b)
		}
	}
	return out
}

func indexBinding(bs []binding, key string) int {
	for i := range bs {
		if bs[i].key == key {
			return i
		}
	}
	return -1
}

func secondsLeft(t, now time.Time) int {
	d := t.Sub(now)
	if d < 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
