package sip

// Answered dialogs outside the process (README.md, "What survives a
// failover"). In signalling mode the audio flows phone↔trunk directly, so
// a call outlives the process that set it up as long as someone can still
// act in its two dialogs: every answered dialog is stored when answered
// (and again when it changes), deleted when its leg ends, and a Server
// that starts — a replica that took the media lease over, or a restarted
// one — rebuilds those legs, answered and connected, resumes their
// session timers and lists them in its LegsPresent, so routing keeps
// their calls instead of ending them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/state"
)

// DialogStore keeps answered dialogs outside the process.
type DialogStore interface {
	// SaveDialog creates or replaces the record of d.Leg.
	SaveDialog(ctx context.Context, d StoredDialog) error
	// DeleteDialog removes a leg's record; a missing one is no error.
	DeleteDialog(ctx context.Context, leg media.LegID) error
	// LoadDialogs returns every stored dialog.
	LoadDialogs(ctx context.Context) ([]StoredDialog, error)
}

// StoredDialog is what a new process needs to act in one answered
// dialog (RFC 3261 section 12.2: Call-ID, tags, URIs, remote target,
// route set, local sequence number) and to tell routing which leg it is.
type StoredDialog struct {
	Leg     media.LegID `json:"leg"`
	Inbound bool        `json:"inbound,omitempty"` // the customer's leg: we answered its INVITE
	// Call is routing's call id and Customer the customer leg a dialled
	// leg serves; Peer is the agent leg whose SDP a customer leg has.
	Call     string      `json:"call,omitempty"`
	Customer media.LegID `json:"customer,omitempty"`
	Peer     media.LegID `json:"peer,omitempty"`
	Caller   string      `json:"caller,omitempty"`
	Hotline  string      `json:"hotline,omitempty"`

	CallID       string   `json:"sip_call_id"`
	LocalURI     string   `json:"local_uri"` // our From, without its tag
	LocalTag     string   `json:"local_tag"`
	RemoteURI    string   `json:"remote_uri"` // their To, without its tag
	RemoteTag    string   `json:"remote_tag"`
	RemoteTarget string   `json:"remote_target"`
	RouteSet     []string `json:"route_set,omitempty"`
	// CSeq is the highest local CSeq the owner may have used: a new
	// owner continues above it (see cseqMargin).
	CSeq        uint32 `json:"cseq"`
	Transport   string `json:"transport"`
	Destination string `json:"destination"`
	LocalSDP    []byte `json:"local_sdp,omitempty"`  // what we gave the peer
	RemoteSDP   []byte `json:"remote_sdp,omitempty"` // what the peer gave us

	Session StoredSession `json:"session"`
}

// StoredSession is a dialog's agreed session timer (RFC 4028).
type StoredSession struct {
	Seconds    int  `json:"seconds"`
	WeRefresh  bool `json:"we_refresh"`
	PeerTimer  bool `json:"peer_timer,omitempty"`
	PeerUpdate bool `json:"peer_update,omitempty"`
}

// WithDialogStore stores answered signalling-mode dialogs in ds and
// restores them when the Server runs; it also makes Run report the legs
// it holds (LegsPresent) once it listens. Default: none, calls die with
// the process.
func WithDialogStore(ds DialogStore) Option { return func(o *options) { o.dialogs = ds } }

// WithEndedDialogs names legs a previous Server of this process saw end
// but could not delete from the store (UnsavedEnds): they are deleted
// before the others are restored, never brought back.
func WithEndedDialogs(legs []media.LegID) Option {
	return func(o *options) { o.endedDialogs = slices.Clone(legs) }
}

// StateDialogs stores dialogs as records of the state store, one per
// leg, every write fenced by the media lease term the Server runs in, so
// a stale owner can neither resurrect nor remove a dialog the new owner
// holds (README.md, "Running several replicas"). A zero fence writes
// unconditionally (a single replica).
func StateDialogs(st state.Store, fence state.Fence) DialogStore { return stateDialogs{st, fence} }

type stateDialogs struct {
	st    state.Store
	fence state.Fence
}

func (s stateDialogs) SaveDialog(ctx context.Context, d StoredDialog) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = s.st.Commit(ctx, state.Tx{Fence: s.fence,
		Puts: []state.Put{{Kind: state.KindSIPDialog, ID: string(d.Leg), Data: data, IfVersion: state.AnyVersion}}})
	return err
}

func (s stateDialogs) DeleteDialog(ctx context.Context, leg media.LegID) error {
	_, err := s.st.Commit(ctx, state.Tx{Fence: s.fence,
		Deletes: []state.Delete{{Kind: state.KindSIPDialog, ID: string(leg), IfVersion: state.AnyVersion}}})
	return err
}

func (s stateDialogs) LoadDialogs(ctx context.Context) ([]StoredDialog, error) {
	recs, err := s.st.List(ctx, state.KindSIPDialog)
	if err != nil {
		return nil, err
	}
	out := make([]StoredDialog, 0, len(recs))
	for _, r := range recs {
		var d StoredDialog
		if err := json.Unmarshal(r.Data, &d); err != nil || d.Leg == "" {
			// Unreadable: returned without a Call-ID, so restore drops it.
			d = StoredDialog{Leg: media.LegID(r.ID)}
		}
		out = append(out, d)
	}
	return out, nil
}

// cseqMargin: rather than a store write for every request sent in a
// dialog, the record reserves CSeq numbers ahead (RFC 3261 12.2.1.1: a
// new owner must continue above anything sent). The reservation is
// renewed when half of it is used, so the write has fifty requests (a
// session refresh every 45 s: more than half an hour) to land.
const cseqMargin = 100

// dialog is one answered dialog as we act in it.
type dialog struct {
	callID    string
	from      *sip.FromHeader // ours, with our tag
	to        *sip.ToHeader   // theirs, with their tag
	target    sip.Uri         // remote target (the peer's Contact)
	routes    []sip.Uri       // route set, in the order of Route headers
	transport string
	dest      string
	cseq      uint32 // last CSeq we used
	reserved  uint32 // highest CSeq the stored record covers
	ours      []byte // SDP we gave the peer
	theirs    []byte // SDP the peer gave us
}

// next returns the next CSeq and whether the stored reservation must be
// renewed. Caller holds the leg's lock.
func (d *dialog) next() (uint32, bool) {
	d.cseq++
	return d.cseq, d.cseq+cseqMargin/2 >= d.reserved
}

// uasDialog is the dialog of an INVITE we answer (RFC 3261 12.1.1):
// route set from Record-Route in order.
func uasDialog(inv *sip.Request, localTag string, ours []byte) *dialog {
	from := inv.To().AsFrom()
	from.Params = from.Params.Clone()
	from.Params.Add("tag", localTag)
	to := inv.From().AsTo()
	to.Params = to.Params.Clone()
	d := &dialog{callID: callIDOf(inv), from: &from, to: &to, target: *inv.Contact().Address.Clone(),
		transport: inv.Transport(), dest: inv.Source(), cseq: 1, ours: ours, theirs: inv.Body()}
	for _, h := range inv.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			d.routes = append(d.routes, *rr.Address.Clone())
		}
	}
	return d
}

// uacDialog is the dialog of an INVITE we sent, from its 2xx (RFC 3261
// 12.1.2): route set from Record-Route in reverse.
func uacDialog(b *branch, res *sip.Response, ours []byte) *dialog {
	target := b.invite.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	d := &dialog{callID: b.callID, from: cloneFrom(b.invite.From()), to: cloneTo(res.To()), target: *target.Clone(),
		transport: b.transp, dest: b.dest, cseq: b.cseq, ours: ours, theirs: res.Body()}
	for _, h := range res.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			d.routes = append([]sip.Uri{*rr.Address.Clone()}, d.routes...)
		}
	}
	return d
}

// request builds a request inside d (RFC 3261 section 12.2.1.1).
func (s *Server) dialogRequest(d *dialog, method sip.RequestMethod, seq uint32) *sip.Request {
	req := sip.NewRequest(method, *d.target.Clone())
	req.AppendHeader(sip.HeaderClone(d.from))
	req.AppendHeader(sip.HeaderClone(d.to))
	for _, r := range d.routes {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.AppendHeader(s.contactHeader(d.transport))
	s.prepare(req, d.transport, d.dest)
	return req
}

// record is d as stored. Caller holds the leg's lock; it renews the CSeq
// reservation.
func (d *dialog) record(leg media.LegID, session *sessionDialog) StoredDialog {
	d.reserved = d.cseq + cseqMargin
	rec := StoredDialog{Leg: leg, CallID: d.callID, LocalTag: tagOf(d.from.Params), RemoteTag: tagOf(d.to.Params),
		RemoteTarget: d.target.String(), CSeq: d.reserved, Transport: d.transport, Destination: d.dest,
		LocalSDP: d.ours, RemoteSDP: d.theirs}
	from, to := cloneFrom(d.from), cloneTo(d.to)
	from.Params.Remove("tag")
	to.Params.Remove("tag")
	rec.LocalURI, rec.RemoteURI = from.Value(), to.Value()
	for _, r := range d.routes {
		rec.RouteSet = append(rec.RouteSet, r.String())
	}
	if session != nil {
		t := session.terms
		rec.Session = StoredSession{Seconds: int(t.interval / time.Second), WeRefresh: t.weRefresh,
			PeerTimer: t.peer.timer, PeerUpdate: t.peer.update}
	}
	return rec
}

// dialogOf rebuilds a dialog from its record.
func dialogOf(rec StoredDialog) (*dialog, error) {
	if rec.CallID == "" || rec.LocalTag == "" || rec.RemoteTag == "" {
		return nil, errors.New("incomplete record")
	}
	d := &dialog{callID: rec.CallID, transport: rec.Transport, dest: rec.Destination,
		cseq: rec.CSeq, reserved: rec.CSeq, ours: rec.LocalSDP, theirs: rec.RemoteSDP}
	var from sip.FromHeader
	name, err := sip.ParseAddressValue(rec.LocalURI, &from.Address, &from.Params)
	if err != nil {
		return nil, fmt.Errorf("local uri %q: %w", rec.LocalURI, err)
	}
	from.DisplayName = name
	if from.Params == nil {
		from.Params = sip.NewParams()
	}
	from.Params.Add("tag", rec.LocalTag)
	var to sip.ToHeader
	if name, err = sip.ParseAddressValue(rec.RemoteURI, &to.Address, &to.Params); err != nil {
		return nil, fmt.Errorf("remote uri %q: %w", rec.RemoteURI, err)
	}
	to.DisplayName = name
	if to.Params == nil {
		to.Params = sip.NewParams()
	}
	to.Params.Add("tag", rec.RemoteTag)
	d.from, d.to = &from, &to
	if err := sip.ParseUri(rec.RemoteTarget, &d.target); err != nil {
		return nil, fmt.Errorf("remote target %q: %w", rec.RemoteTarget, err)
	}
	for _, r := range rec.RouteSet {
		var u sip.Uri
		if err := sip.ParseUri(r, &u); err != nil {
			return nil, fmt.Errorf("route %q: %w", r, err)
		}
		d.routes = append(d.routes, u)
	}
	return d, nil
}

// termsOf is a stored session timer.
func (st sessionTiming) termsOf(rec StoredSession) sessionTerms {
	t := sessionTerms{interval: time.Duration(rec.Seconds) * time.Second, weRefresh: rec.WeRefresh,
		peer: timerPeer{timer: rec.PeerTimer, update: rec.PeerUpdate}}
	if t.interval < st.minSE {
		t.interval = st.expires
	}
	return t
}

// persistsDialogs: dialogs are stored in signalling mode only; an
// anchored call's audio runs through this process's RTP ports, which a
// new process cannot take over (README.md, "What survives a failover").
func (s *Server) persistsDialogs() bool { return s.opts.dialogs != nil && s.opts.anchor == nil }

// dialogWriter writes dialog records in the order legs changed, one
// goroutine, the latest change of a leg superseding an unwritten older
// one; a failed write (store unreachable) is retried until it lands or
// the Server stops.
type dialogWriter struct {
	s       *Server
	mu      sync.Mutex
	pending map[media.LegID]*StoredDialog // nil: delete
	order   []media.LegID
	wake    chan struct{}
}

func newDialogWriter(s *Server) *dialogWriter {
	return &dialogWriter{s: s, pending: map[media.LegID]*StoredDialog{}, wake: make(chan struct{}, 1)}
}

// save queues rec (nil: delete leg) without blocking.
func (w *dialogWriter) save(leg media.LegID, rec *StoredDialog) {
	w.mu.Lock()
	if _, queued := w.pending[leg]; !queued {
		w.order = append(w.order, leg)
	}
	w.pending[leg] = rec
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes until stop closes.
func (w *dialogWriter) run(stop <-chan struct{}) {
	// A write in flight when the Server stops gives up at once (it is
	// queued again, for UnsavedEnds or the final flush).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-stop:
			return
		case <-w.wake:
		case <-retry.C:
		}
		if !w.flush(ctx) {
			retry.Reset(500 * time.Millisecond)
		}
	}
}

// flush writes everything queued once; false when some write failed
// and is queued again.
func (w *dialogWriter) flush(ctx context.Context) bool {
	w.mu.Lock()
	pending, order := w.pending, w.order
	w.pending, w.order = map[media.LegID]*StoredDialog{}, nil
	w.mu.Unlock()
	ok := true
	for _, leg := range order {
		rec := pending[leg]
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		if rec == nil {
			err = w.s.opts.dialogs.DeleteDialog(wctx, leg)
		} else {
			err = w.s.opts.dialogs.SaveDialog(wctx, *rec)
		}
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, state.ErrFenced):
			// A newer owner holds the calls now: nothing of ours may land.
			w.s.log.Warn("sip: dialog write fenced: another replica owns the calls", "leg", leg)
		default:
			ok = false
			w.s.log.Warn("sip: storing a dialog failed; retrying", "leg", leg, "delete", rec == nil, "err", err)
			w.mu.Lock()
			if _, newer := w.pending[leg]; !newer {
				w.pending[leg] = rec
				w.order = append(w.order, leg)
			}
			w.mu.Unlock()
		}
	}
	return ok
}

// unsavedEnds lists queued deletes.
func (w *dialogWriter) unsavedEnds() []media.LegID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []media.LegID
	for _, leg := range w.order {
		if w.pending[leg] == nil {
			out = append(out, leg)
		}
	}
	return out
}

// saveDialog queues a leg's record. Caller holds the leg's lock.
func (s *Server) saveDialog(leg media.LegID, d *dialog, rec func(StoredDialog) StoredDialog, session *sessionDialog) {
	if !s.persistsDialogs() || d == nil {
		return
	}
	r := rec(d.record(leg, session))
	s.dialogs.save(leg, &r)
}

// dropDialog queues the deletion of a leg's record.
func (s *Server) dropDialog(leg media.LegID) {
	if s.persistsDialogs() {
		s.dialogs.save(leg, nil)
	}
}

// UnsavedEnds lists legs that ended while their stored dialog could not
// be deleted (store unreachable); after Run returned, the next Server of
// the process gets them through WithEndedDialogs.
func (s *Server) UnsavedEnds() []media.LegID {
	if s.dialogs == nil {
		return nil
	}
	if !s.restored.Load() {
		// Run never got as far as queueing them: pass them on as given.
		return slices.Clone(s.opts.endedDialogs)
	}
	return s.dialogs.unsavedEnds()
}

// HandOver makes the coming end of Run leave the live calls to the next
// owner: no BYE, stored dialogs kept (the media lease was lost, another
// replica or the next term of this one restores them). Call it before
// Run's context ends.
func (s *Server) HandOver() { s.handover.Store(true) }

// restoreDialogs rebuilds stored legs; the returned func, run once the
// transports serve, resumes their session timers and reports what the
// path holds (media.Snapshot: the one order every path uses), so routing
// acts on the legs only when they can send. A store that cannot be read
// fails Run: reporting no legs would end every call.
func (s *Server) restoreDialogs(ctx context.Context) (func(), error) {
	if s.opts.dialogs == nil {
		return func() {}, nil
	}
	ended := map[media.LegID]bool{}
	s.restored.Store(true)
	for _, leg := range s.opts.endedDialogs {
		ended[leg] = true
		s.dialogs.save(leg, nil)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	recs, err := s.opts.dialogs.LoadDialogs(lctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("sip: load stored dialogs: %w", err)
	}
	now := s.now()
	snap := media.Snapshot{At: now}
	var restored []*sessionDialog
	for _, rec := range recs {
		if ended[rec.Leg] {
			continue
		}
		if !s.persistsDialogs() {
			// Anchored: the RTP ports died with the previous process.
			s.dialogs.save(rec.Leg, nil)
			continue
		}
		d, err := dialogOf(rec)
		if err != nil {
			s.log.Warn("sip: stored dialog unusable; its leg is gone", "leg", rec.Leg, "err", err)
			s.dialogs.save(rec.Leg, nil)
			snap.Ended = append(snap.Ended, media.LegEnded{FactBase: media.FactBase{At: now}, Leg: rec.Leg, Cause: media.CauseFailed})
			continue
		}
		terms := s.opts.session.termsOf(rec.Session)
		if rec.Inbound {
			restored = append(restored, s.restoreIn(rec, d, terms))
		} else {
			restored = append(restored, s.restoreOut(rec, d, terms))
		}
		snap.Legs = append(snap.Legs, media.LegSnapshot{Leg: rec.Leg, Answered: true, Caller: rec.Caller})
	}
	for _, rec := range recs {
		if l := s.inLeg(rec.Customer); l != nil && rec.Call != "" {
			s.mu.Lock()
			s.bound[rec.Call] = l
			s.mu.Unlock()
		}
	}
	if len(snap.Legs) > 0 {
		s.log.Info("sip: restored answered dialogs", "legs", len(snap.Legs))
	}
	return func() {
		for _, sd := range restored {
			sd.start()
		}
		// No Hotline on restored callers: an answered caller no call
		// holds is an orphan to hang up, not a new arrival.
		for _, f := range snap.Facts() {
			s.report(f)
		}
	}, nil
}

// restoreIn rebuilds a customer leg, answered and confirmed.
func (s *Server) restoreIn(rec StoredDialog, d *dialog, terms sessionTerms) *sessionDialog {
	l := &inLeg{s: s, id: rec.Leg, localTag: tagOf(d.from.Params), offer: d.theirs, caller: rec.Caller,
		hotline: rec.Hotline, arrived: s.now(), state: inConfirmed, connected: rec.Peer, dlg: d,
		answered: closedChan, acked: make(chan struct{}), ended: make(chan struct{})}
	close(l.acked)
	l.session = newSessionDialog(s, l.id, terms, true, l.inDialogRequest,
		func() { _ = l.hangup(media.CauseFailed) })
	s.mu.Lock()
	s.inLegs[l.id] = l
	s.byCallID[d.callID] = dialogRef{in: l}
	s.mu.Unlock()
	return l.session
}

// restoreOut rebuilds a dialled leg whose device answered.
func (s *Server) restoreOut(rec StoredDialog, d *dialog, terms sessionTerms) *sessionDialog {
	l := &outLeg{s: s, id: rec.Leg, req: media.DialRequest{CallID: rec.Call, Customer: rec.Customer},
		offer: d.ours, state: outAnswered, ended: make(chan struct{})}
	b := &branch{leg: l, callID: d.callID, transp: d.transport, dest: d.dest, final: 200, cseq: d.cseq, dlg: d}
	l.branches, l.winner = []*branch{b}, b
	l.session = newSessionDialog(s, l.id, terms, false,
		func(m sip.RequestMethod) *sip.Request { return s.branchRequest(b, m) },
		func() { l.hangup(media.CauseFailed) })
	s.mu.Lock()
	s.outLegs[l.id] = l
	s.byCallID[d.callID] = dialogRef{branch: b}
	s.mu.Unlock()
	return l.session
}

func cloneFrom(h *sip.FromHeader) *sip.FromHeader { return sip.HeaderClone(h).(*sip.FromHeader) }
func cloneTo(h *sip.ToHeader) *sip.ToHeader       { return sip.HeaderClone(h).(*sip.ToHeader) }
