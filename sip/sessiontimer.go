package sip

// Session timers (RFC 4028) and dialog liveness.
//
// A phone or trunk that vanishes without a BYE — power cut, crashed
// softphone, a NAT binding gone — leaves an answered dialog nobody will
// ever end. With anchored media the RTP inactivity timer notices; in
// signalling-only mode callfloor never sees the audio, so every answered
// dialog is kept by a session timer: callfloor negotiates
// Session-Expires on both legs and, when it is the refresher, refreshes
// the session (UPDATE where the peer allows it, otherwise an in-dialog
// OPTIONS that asks only "are you there") every half interval; when the
// peer is the refresher, a missing refresh ends the session (section
// 10). A refresh answered 408 or 481, or not answered at all within
// probeTimeout, means the dialog is gone: the leg ends with cause
// failed, as if the device had failed, so routing frees the agent
// (README.md, "Ghost calls").

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

const (
	// MinSessionExpires is RFC 4028's floor for a session interval
	// (section 4): nobody may ask for less.
	MinSessionExpires = 90 * time.Second
	// DefaultSessionExpires is the interval callfloor asks for and grants.
	// At the floor: a vanished peer is noticed within 90/2 s plus
	// probeTimeout when callfloor refreshes, and within 60 s of the last
	// refresh when the peer does (section 10), so a ghost call ends
	// within a minute either way.
	DefaultSessionExpires = MinSessionExpires
	// defaultProbeTimeout bounds one refresh: a peer that answers nothing
	// for this long (UDP retransmits at 0.5, 1, 2 and 4 s) is gone. Far
	// below Timer F's 32 s, which would let a ghost live past a minute.
	defaultProbeTimeout = 8 * time.Second
)

// sessionTiming is a server's session timer settings.
type sessionTiming struct {
	expires      time.Duration // the interval we ask for and grant at most
	minSE        time.Duration // the shortest interval we accept
	probeTimeout time.Duration
}

// sessionExpires is a parsed Session-Expires header field (RFC 4028
// section 4): "Session-Expires: 1800;refresher=uas".
type sessionExpires struct {
	delta     time.Duration
	refresher string // "uac", "uas" or "" (not said)
}

// errBadTimerHeader: a Session-Expires or Min-SE value that is not a
// delta-seconds (with, for Session-Expires, an optional refresher).
var errBadTimerHeader = errors.New("sip: malformed session timer header")

// parseSessionExpires parses a Session-Expires value. Unknown parameters
// are ignored (section 4: extension params).
func parseSessionExpires(v string) (sessionExpires, error) {
	parts := strings.Split(v, ";")
	d, err := parseDeltaSeconds(parts[0])
	if err != nil {
		return sessionExpires{}, err
	}
	se := sessionExpires{delta: d}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "refresher") {
			continue
		}
		switch r := strings.ToLower(strings.TrimSpace(val)); r {
		case "uac", "uas":
			se.refresher = r
		default:
			return sessionExpires{}, fmt.Errorf("%w: refresher %q", errBadTimerHeader, val)
		}
	}
	return se, nil
}

// parseMinSE parses a Min-SE value (section 5): delta-seconds, params
// ignored.
func parseMinSE(v string) (time.Duration, error) {
	d, _, _ := strings.Cut(v, ";")
	return parseDeltaSeconds(d)
}

func parseDeltaSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: %q", errBadTimerHeader, s)
	}
	return time.Duration(n) * time.Second, nil
}

func (se sessionExpires) String() string {
	v := strconv.Itoa(int(se.delta / time.Second))
	if se.refresher != "" {
		v += ";refresher=" + se.refresher
	}
	return v
}

// sipHeaders is what requests and responses share for reading and
// adding header fields.
type sipHeaders interface {
	GetHeader(name string) sip.Header
	GetHeaders(name string) []sip.Header
	AppendHeader(h sip.Header)
}

// timerPeer is what the other side of a dialog said it can do.
type timerPeer struct {
	timer  bool // Supported (or Require): timer
	update bool // Allow: UPDATE
}

// peerOf reads a peer's capabilities from its INVITE or 2xx.
func peerOf(m sipHeaders) timerPeer {
	return timerPeer{
		timer:  hasToken(m, "timer", "Supported", "k") || hasToken(m, "timer", "Require"),
		update: hasToken(m, "UPDATE", "Allow"),
	}
}

// hasToken reports whether a comma-separated header (long or compact
// name, any number of occurrences) lists tok.
func hasToken(m sipHeaders, tok string, names ...string) bool {
	for _, name := range names {
		for _, h := range m.GetHeaders(name) {
			for _, v := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(v), tok) {
					return true
				}
			}
		}
	}
	return false
}

// headerValue is the first value of a header by long or compact name.
func headerValue(m sipHeaders, names ...string) (string, bool) {
	for _, name := range names {
		if h := m.GetHeader(name); h != nil {
			return h.Value(), true
		}
	}
	return "", false
}

// sessionTerms is what one dialog's session timer was agreed to be.
type sessionTerms struct {
	interval  time.Duration
	weRefresh bool
	peer      timerPeer
}

// refresherParam names the refresher from the side of who sent the
// INVITE (uac) or answered it (uas).
func (t sessionTerms) refresherParam(weAreUAS bool) string {
	if t.weRefresh == weAreUAS {
		return "uas"
	}
	return "uac"
}

// negotiateUAS decides the session timer of a dialog callfloor answers
// (RFC 4028 section 9). tooSmall is non-zero when the INVITE asked for an
// interval below ours: it gets 422 with Min-SE tooSmall.
func (st sessionTiming) negotiateUAS(req *sip.Request) (terms sessionTerms, tooSmall time.Duration, err error) {
	peer := peerOf(req)
	interval := st.expires
	var asked sessionExpires
	if v, ok := headerValue(req, "Session-Expires", "x"); ok {
		if asked, err = parseSessionExpires(v); err != nil {
			return sessionTerms{}, 0, err
		}
		if asked.delta < st.minSE {
			return sessionTerms{}, st.minSE, nil
		}
		interval = min(interval, asked.delta) // a UAS may only lower it
	}
	if v, ok := headerValue(req, "Min-SE"); ok {
		minSE, err := parseMinSE(v)
		if err != nil {
			return sessionTerms{}, 0, err
		}
		interval = max(interval, minSE) // and never below the Min-SE
	}
	// Table 2 of section 9: a peer without timer support cannot refresh,
	// so we do; a peer that chose keeps its choice; otherwise we refresh
	// when we can do it cheaply (UPDATE), and leave it to the peer when
	// we could only re-INVITE.
	weRefresh := true
	if peer.timer {
		switch asked.refresher {
		case "uac":
			weRefresh = false
		case "uas":
		default:
			weRefresh = peer.update
		}
	}
	return sessionTerms{interval: interval, weRefresh: weRefresh, peer: peer}, 0, nil
}

// termsFromAnswer reads the session timer of a dialog callfloor dialled
// from the 2xx (RFC 4028 section 7.2). Our INVITE offered support but no
// interval, so a 2xx without Session-Expires means the device does not
// run timers and we refresh at our own interval.
func (st sessionTiming) termsFromAnswer(res *sip.Response) sessionTerms {
	t := sessionTerms{interval: st.expires, weRefresh: true, peer: peerOf(res)}
	if v, ok := headerValue(res, "Session-Expires", "x"); ok {
		if se, err := parseSessionExpires(v); err == nil {
			t.interval = max(se.delta, st.minSE)
			t.weRefresh = se.refresher != "uas"
		}
	}
	return t
}

// addTimerHeaders puts the agreed session timer on a 2xx we send or a
// refresh we send or answer (sections 7.4, 9).
func addTimerHeaders(m sipHeaders, t sessionTerms, weAreUAS bool) {
	m.AppendHeader(sip.NewHeader("Supported", "timer"))
	m.AppendHeader(sip.NewHeader("Session-Expires",
		sessionExpires{delta: t.interval, refresher: t.refresherParam(weAreUAS)}.String()))
	if t.peer.timer {
		m.AppendHeader(sip.NewHeader("Require", "timer"))
	}
}

// sessionState is where a dialog's session timer is.
type sessionState int

const (
	sessionLive    sessionState = iota // refreshed within its interval
	sessionProbing                     // our refresh is out, no answer yet
	sessionLost                        // the peer is gone: the leg is ended
	sessionOver                        // the dialog ended by other means
)

func (s sessionState) String() string {
	switch s {
	case sessionLive:
		return "live"
	case sessionProbing:
		return "probing"
	case sessionLost:
		return "lost"
	case sessionOver:
		return "over"
	}
	return "unknown"
}

// sessionEvent is what can happen to a session timer.
type sessionEvent int

const (
	evRefreshDue  sessionEvent = iota // half the interval passed (we refresh)
	evRefreshOK                       // our refresh was answered
	evRefreshLost                     // our refresh got 408/481 or nothing
	evPeerRefresh                     // the peer refreshed (re-INVITE/UPDATE)
	evExpired                         // the peer should have refreshed and did not
	evDialogEnded                     // BYE, hang-up, shutdown
)

func (e sessionEvent) String() string {
	return [...]string{"refresh_due", "refresh_ok", "refresh_lost", "peer_refresh", "expired", "dialog_ended"}[e]
}

// sessionTransitions is the session timer's state machine; a pair
// missing from the table is a no-op (e.g. a late answer after the
// dialog ended).
var sessionTransitions = map[sessionState]map[sessionEvent]sessionState{
	sessionLive: {
		evRefreshDue:  sessionProbing,
		evPeerRefresh: sessionLive,
		evExpired:     sessionLost,
		evDialogEnded: sessionOver,
	},
	sessionProbing: {
		evRefreshOK:   sessionLive,
		evRefreshLost: sessionLost,
		evPeerRefresh: sessionProbing,
		evDialogEnded: sessionOver,
	},
}

// nextSessionState applies ev; ok is false when ev means nothing in st.
func nextSessionState(st sessionState, ev sessionEvent) (sessionState, bool) {
	next, ok := sessionTransitions[st][ev]
	if !ok {
		return st, false
	}
	return next, true
}

// refreshOutcome is the one classifier of an answer to our refresh
// (section 10): only 408 and 481, or silence, say the dialog is gone;
// any other answer proves the peer is there. 405/501 to an UPDATE tell us
// to ask with OPTIONS next time.
func refreshOutcome(res *sip.Response, err error) (ev sessionEvent, useOptions bool) {
	if err != nil || res == nil {
		return evRefreshLost, false
	}
	switch res.StatusCode {
	case 408, 481:
		return evRefreshLost, false
	case 405, 501:
		return evRefreshOK, true
	}
	return evRefreshOK, false
}

// closedChan is ready at once: a restored caller's leg was answered
// before this process started.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// sessionDialog is one dialog's session timer. It holds no goroutine: a
// timer drives it, and its leg tells it when the dialog is confirmed
// (start), refreshed by the peer (peerRefreshed) and over (end). A
// goroutine per dialog was 10,000 parked stacks with 5,000 live calls
// (docs/performance.md, "SIP dialogs without a goroutine each").
type sessionDialog struct {
	s       *Server
	leg     media.LegID
	terms   sessionTerms                         // fixed once negotiated
	weUAS   bool                                 // we answered this dialog's INVITE
	request func(sip.RequestMethod) *sip.Request // a new in-dialog request
	lost    func()                               // end the leg: the peer is gone

	// mu is a leaf: lock ordering is leg.mu → sessionDialog.mu, and lost
	// and request are called without it.
	mu     sync.Mutex
	state  sessionState
	method sip.RequestMethod // what we refresh with: UPDATE, or OPTIONS
	timer  *time.Timer       // nil until started
	armed  uint64            // which arming the running timer belongs to
	// unhook drops end from the server's shutdown once the dialog ends.
	unhook func() bool
}

func newSessionDialog(s *Server, leg media.LegID, terms sessionTerms, weUAS bool,
	request func(sip.RequestMethod) *sip.Request, lost func()) *sessionDialog {
	method := sip.OPTIONS
	if terms.peer.update {
		method = sip.UPDATE
	}
	return &sessionDialog{s: s, leg: leg, terms: terms, weUAS: weUAS, request: request, lost: lost, method: method}
}

// every is how long the timer waits in sessionLive. Section 10: the
// refresher refreshes at half the interval; the other side gives up at
// interval minus min(32 s, interval/3).
func (d *sessionDialog) every() time.Duration {
	if d.terms.weRefresh {
		return d.terms.interval / 2
	}
	return d.terms.interval - min(32*time.Second, d.terms.interval/3)
}

// start runs the timer once the dialog is confirmed (our ACK sent, or
// theirs received). Starting twice, after the end or during shutdown does
// nothing.
func (d *sessionDialog) start() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil || d.state != sessionLive || d.s.baseCtx.Err() != nil {
		return
	}
	d.unhook = context.AfterFunc(d.s.baseCtx, d.end)
	d.armLocked()
}

// armLocked (re)starts the wait of sessionLive; a timer that already
// fired for an earlier arming finds armed moved on and does nothing.
// Caller holds d.mu.
func (d *sessionDialog) armLocked() {
	if d.timer != nil {
		d.timer.Stop()
	}
	d.armed++
	armed := d.armed
	d.timer = time.AfterFunc(d.every(), func() { d.fire(armed) })
}

// peerRefreshed notes a refresh from the peer (re-INVITE or UPDATE).
func (d *sessionDialog) peerRefreshed() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next, ok := nextSessionState(d.state, evPeerRefresh)
	if !ok {
		return
	}
	d.state = next
	if next == sessionLive && d.timer != nil {
		d.armLocked()
	}
}

// end stops the timer for good: BYE, hang-up, or the server shutting
// down.
func (d *sessionDialog) end() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state, _ = nextSessionState(d.state, evDialogEnded)
	d.armed++
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.unhook != nil {
		d.unhook()
	}
}

// fire is the timer's wait running out: our refresh is due, or the
// peer's refresh is overdue. It picks the transition under d.mu, then
// acts without it.
func (d *sessionDialog) fire(armed uint64) {
	if !d.s.work.enter() {
		return // shutting down
	}
	defer d.s.work.leave()
	ev := evExpired
	if d.terms.weRefresh {
		ev = evRefreshDue
	}
	d.mu.Lock()
	if armed != d.armed {
		d.mu.Unlock()
		return // re-armed or ended while this timer fired
	}
	next, ok := nextSessionState(d.state, ev)
	if !ok {
		d.mu.Unlock()
		return
	}
	d.state = next
	method := d.method
	d.mu.Unlock()

	switch next {
	case sessionLost:
		d.s.log.Info("dialog gone: session not refreshed", "leg", d.leg, "event", ev.String())
		d.lost()
	case sessionProbing:
		d.probe(method)
	}
}

// probe sends our refresh and applies its outcome (refreshOutcome).
func (d *sessionDialog) probe(method sip.RequestMethod) {
	res, err := d.s.doWithin(d.s.refreshRequest(d, method), d.s.opts.session.probeTimeout)
	if err != nil && d.s.baseCtx.Err() != nil {
		return
	}
	ev, useOptions := refreshOutcome(res, err)
	d.mu.Lock()
	if useOptions {
		d.method = sip.OPTIONS
	}
	next, ok := nextSessionState(d.state, ev) // no-op once the dialog ended
	if ok {
		d.state = next
		if next == sessionLive {
			d.armLocked()
		}
	}
	d.mu.Unlock()
	if ok && next == sessionLost {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		d.s.log.Info("dialog gone: refresh failed", "leg", d.leg, "method", method, "status", status, "err", err)
		d.lost()
	}
}

// refreshRequest is our refresh: an UPDATE carrying the session timer,
// or an OPTIONS that only asks whether the dialog still exists.
func (s *Server) refreshRequest(d *sessionDialog, method sip.RequestMethod) *sip.Request {
	req := d.request(method)
	if method == sip.UPDATE {
		addTimerHeaders(req, d.terms, d.weUAS)
	}
	return req
}
