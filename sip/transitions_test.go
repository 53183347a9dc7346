package sip

import (
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
)

// newTestInLeg builds a customer leg on an idle server around a parsed
// INVITE and a recording transaction.
func newTestInLeg(t *testing.T, s *Server) (*inLeg, *fakeTx) {
	t.Helper()
	msg, err := sip.NewParser().ParseSIP([]byte(fuzzSeeds[2]))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	req.SetSource("127.0.0.1:5099")
	tx := newFakeTx()
	l := &inLeg{s: s, id: media.LegID(callIDOf(req)), invite: req, tx: tx, localTag: "us", offer: req.Body(),
		answered: make(chan struct{}), acked: make(chan struct{}), ended: make(chan struct{})}
	terms, _, err := s.opts.session.negotiateUAS(req)
	if err != nil {
		t.Fatal(err)
	}
	l.session = newSessionDialog(s, l.id, terms, true, l.inDialogRequest, func() { _ = l.hangup(media.CauseFailed) })
	s.mu.Lock()
	s.inLegs[l.id] = l
	s.byCallID[string(l.id)] = dialogRef{in: l}
	s.mu.Unlock()
	return l, tx
}

func lastEnded(t *testing.T, rec *recorder) media.LegEnded {
	t.Helper()
	fs := rec.all()
	for i := len(fs) - 1; i >= 0; i-- {
		if e, ok := fs[i].(media.LegEnded); ok {
			return e
		}
	}
	t.Fatal("no LegEnded")
	return media.LegEnded{}
}

// Every transition of the customer leg (RFC 3261 section 13.3 UAS).
func TestInLegTransitions(t *testing.T) {
	t.Run("proceeding-ringing-answering-confirmed-bye", func(t *testing.T) {
		rec := newRecorder()
		s := newIdleServer(t, rec)
		l, tx := newTestInLeg(t, s)
		if err := l.ring(); err != nil || l.state != inRinging {
			t.Fatalf("ring: %v %s", err, l.state)
		}
		if err := l.ring(); err != nil { // ringback twice is harmless
			t.Fatal(err)
		}
		if err := l.connect("dial-1", []byte("v=0\r\n")); err != nil || l.state != inAnswering {
			t.Fatalf("connect: %v %s", err, l.state)
		}
		if err := l.connect("dial-1", nil); err != nil { // same agent: no-op
			t.Fatal(err)
		}
		if err := l.ring(); !errors.Is(err, media.ErrNotSupported) {
			t.Fatalf("ring after answer: %v", err)
		}
		l.finishCancelled() // too late: ignored (onCancel runs it on its own goroutine)
		if l.state != inAnswering {
			t.Fatalf("cancel after 2xx changed state to %s", l.state)
		}
		l.onAck(nil)
		if l.state != inConfirmed {
			t.Fatalf("after ACK: %s", l.state)
		}
		if !l.onBye() || l.state != inEnded {
			t.Fatalf("after BYE: %s", l.state)
		}
		if e := lastEnded(t, rec); e.Cause != media.CauseNormal {
			t.Fatalf("ended %+v", e)
		}
		if got := tx.codes(); len(got) != 3 || got[0] != 180 || got[2] != 200 {
			t.Fatalf("responses %v", got)
		}
		if err := l.ring(); !errors.Is(err, media.ErrLegGone) {
			t.Fatalf("ring after end: %v", err)
		}
		if err := l.connect("dial-2", nil); !errors.Is(err, media.ErrLegGone) {
			t.Fatalf("connect after end: %v", err)
		}
		if err := l.hangup(media.CauseNormal); err != nil || l.onBye() {
			t.Fatalf("hangup/bye after end: %v", err)
		}
	})
	t.Run("proceeding-cancel", func(t *testing.T) {
		rec := newRecorder()
		s := newIdleServer(t, rec)
		l, _ := newTestInLeg(t, s)
		l.finishCancelled() // what onCancel runs on its own goroutine
		if l.state != inEnded || lastEnded(t, rec).Cause != media.CauseCancelled {
			t.Fatalf("state %s", l.state)
		}
		if s.inLeg(l.id) != nil {
			t.Fatal("cancelled leg still in the table")
		}
	})
	// A CANCEL that overtook its INVITE and was matched by us (not sipgo):
	// we send the 487 ourselves; after a 2xx it changes nothing.
	t.Run("ringing-cancel-matched-by-us", func(t *testing.T) {
		rec := newRecorder()
		s := newIdleServer(t, rec)
		l, tx := newTestInLeg(t, s)
		_ = l.ring()
		l.cancelByRequest()
		if l.state != inEnded || lastEnded(t, rec).Cause != media.CauseCancelled {
			t.Fatalf("state %s", l.state)
		}
		if got := tx.codes(); len(got) != 2 || got[1] != 487 {
			t.Fatalf("responses %v, want 180 then 487", got)
		}
		l2, tx2 := newTestInLeg(t, s)
		_ = l2.connect("dial-1", []byte("v=0\r\n"))
		l2.cancelByRequest()
		if l2.state != inAnswering {
			t.Fatalf("cancel after 2xx: state %s", l2.state)
		}
		if got := tx2.codes(); len(got) != 1 || got[0] != 200 {
			t.Fatalf("responses after 2xx %v", got)
		}
	})
	for _, c := range []struct {
		cause media.Cause
		code  int
	}{{media.CauseBusy, 486}, {media.CauseRejected, 603}, {media.CauseCancelled, 487}, {media.CauseNoAnswer, 480},
		{media.CauseFailed, 503}} { // failed: no queue, or refused while routing runs late
		t.Run("ringing-hangup-"+string(c.cause), func(t *testing.T) {
			rec := newRecorder()
			s := newIdleServer(t, rec)
			l, tx := newTestInLeg(t, s)
			_ = l.ring()
			_ = l.hangup(c.cause)
			codes := tx.codes()
			if l.state != inEnded || codes[len(codes)-1] != c.code || lastEnded(t, rec).Cause != c.cause {
				t.Fatalf("state %s codes %v", l.state, codes)
			}
		})
	}
	t.Run("confirmed-hangup-sends-bye", func(t *testing.T) {
		rec := newRecorder()
		s := newIdleServer(t, rec) // background context ended: the BYE is skipped
		l, _ := newTestInLeg(t, s)
		_ = l.connect("dial-1", []byte("v=0\r\n"))
		l.onAck(nil)
		_ = l.hangup(media.CauseNormal)
		if l.state != inEnded || lastEnded(t, rec).Cause != media.CauseNormal {
			t.Fatalf("state %s", l.state)
		}
		l.endWith(media.CauseFailed, 503) // no-op once ended
	})
	t.Run("transaction-gone", func(t *testing.T) {
		rec := newRecorder()
		s := newIdleServer(t, rec)
		l, tx := newTestInLeg(t, s)
		tx.Terminate()
		l.serve()
		if l.state != inEnded || lastEnded(t, rec).Cause != media.CauseFailed {
			t.Fatalf("state %s", l.state)
		}
	})
}

func TestCauseMapping(t *testing.T) {
	// A fork where one device is busy and another unreachable is busy;
	// "app 480, desk 486" is a no-answer, as on Asterisk and FreeSWITCH.
	if got := causeOf([]*branch{{final: 503}, {final: 486}}); got != media.CauseBusy {
		t.Errorf("causeOf(503, 486) = %s", got)
	}
	if got := causeOf([]*branch{{final: 480}, {final: 486}}); got != media.CauseNoAnswer {
		t.Errorf("causeOf(480, 486) = %s", got)
	}
	for _, st := range []inState{inProceeding, inRinging, inAnswering, inConfirmed, inEnded} {
		if st.String() == "unknown" {
			t.Errorf("state %d has no name", st)
		}
	}
	for _, st := range []outState{outCalling, outRinging, outAnswered, outEnded} {
		if st.String() == "unknown" {
			t.Errorf("state %d has no name", st)
		}
	}
}

// The trunk may call over TCP; the registrar serves TCP as well.
func TestSippOverTCP(t *testing.T) {
	r := &router{agents: []string{"a1"}, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	reg := startSipp(t, "register tcp", testpeer.FreePort(t), h.addr, "-t", "t1", "-sf", scenario("register.xml"), "-m", "1",
		"-au", "a2", "-ap", "sip-a2", "-key", "user", "a2", "-key", "expires", "3600")
	reg.wait(t, 20*time.Second)
	h.rec.waitFor(t, "a2 registered over TCP", time.Second, deviceState("a2", true))

	agent := agentPhone(t, h, "a1", "agent_answer.xml")
	call := startSipp(t, "caller tcp", testpeer.FreePort(t), h.addr, "-t", "t1", "-sf", scenario("caller.xml"), "-m", "1", "-s", "800", "-d", "200")
	call.wait(t, 30*time.Second)
	agent.wait(t, 30*time.Second)
	noErrors(t, r)
}

func TestNonceTableIsBounded(t *testing.T) {
	clk := &testClock{}
	a := newAuthenticator("r", time.Minute, 3, clk.now)
	for i := 0; i < maxNonces+10; i++ {
		a.challenge("10.0.0.1", false)
	}
	if n := len(a.nonces); n != maxNonces {
		t.Fatalf("%d nonces, want the cap %d", n, maxNonces)
	}
}
