package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/internal/floortest"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/rtpanchor"
	"github.com/callfloor/callfloor/store"
)

// TestFloorRules runs the floor's behaviour suite (internal/floortest)
// on the built-in SIP path: the real engine and presence on the demo
// floor, every agent device a sipp phone that registers with digest and
// plays one scenario per ring, trunk calls from a SIP user agent on
// loopback. The clock is real: the suite's queues ring for a few seconds.
func TestFloorRules(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	floortest.Run(t, func(t *testing.T) floortest.Floor { return newSIPFloor(t, false) })
}

// TestFloorRulesAnchored runs the suite on the SIP path with its media
// anchor (README.md, "Media on the built-in SIP path"), where it can
// monitor.
func TestFloorRulesAnchored(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	floortest.Run(t, func(t *testing.T) floortest.Floor { return newSIPFloor(t, true) })
}

// sipRingTimeout is the suite's ring timeout here; a late answer comes
// about half of it after the ring, well before the timeout.
const (
	sipRingTimeout = 4 * time.Second
	sipLateAnswer  = 2 * time.Second
)

type sipFloor struct {
	srv  *Server
	addr string
	port int
	svc  *presence.Service
	eng  *routing.Engine

	// anchored: the path carries media (WithMediaAnchor).
	anchored bool
	// trunkPort: where the outbound trunk's far end (a sipp phone) listens.
	trunkPort int

	mu      sync.Mutex
	phones  map[string]int   // SIP user → the port its sipp phone registered from
	playing map[string]*sipp // SIP user → the scenario its phone plays now
	callers int
}

func newSIPFloor(t *testing.T, anchored bool) floortest.Floor {
	ctx, cancel := context.WithCancel(context.Background())
	st := store.NewMemory()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	fl := &sipFloor{phones: map[string]int{}, playing: map[string]*sipp{}}
	fl.svc = presence.NewService(st, append(cfg.PresenceOptions(), presence.WithLogger(testLogger()),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return fl.eng.LogoutGuard(ctx, id) }))...)
	if err := config.Bootstrap(ctx, cfg, fl.svc); err != nil {
		t.Fatal(err)
	}
	fl.eng = routing.NewEngine(st, fl.svc, nil, routing.WithLogger(testLogger()), routing.WithDefaultQueue(cfg.DefaultQueue))
	if err := config.BootstrapQueues(ctx, cfg, fl.eng); err != nil {
		t.Fatal(err)
	}
	fl.port = freeDualPort(t)
	fl.addr = "127.0.0.1:" + strconv.Itoa(fl.port)
	// Session timers at 2 s: a phone killed mid-call (Vanish) is found
	// gone within seconds, and every answering phone answers refreshes.
	opts := []Option{WithLogger(testLogger()), withSessionTiming(2*time.Second, time.Second)}
	if anchored {
		acfg := rtpanchor.Config{Addr: netip.MustParseAddr("127.0.0.1")}
		acfg.PortMin = 40000 + 2*rand.IntN(5000)
		acfg.PortMax = acfg.PortMin + 199
		if acfg.Music, err = rtpanchor.ToneClip(rtpanchor.Cadence{F1: toneMusic, On: 1000}); err != nil {
			t.Fatal(err)
		}
		a, err := rtpanchor.New(acfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() }) // after the server stopped (cleanups run last first)
		opts = append(opts, WithMediaAnchor(a))
		fl.anchored = true
	}
	fl.trunkPort = testpeer.FreeUDPPort(t)
	fl.srv, err = New(Config{Addr: fl.addr, OutboundTrunk: "sip:{number}@127.0.0.1:" + strconv.Itoa(fl.trunkPort)},
		demoDir{}, fl.eng, opts...)
	if err != nil {
		t.Fatal(err)
	}
	fl.eng.SetMedia(fl.srv)
	engDone, srvDone := make(chan error, 1), make(chan error, 1)
	go func() { engDone <- fl.eng.Run(ctx) }()
	<-fl.eng.Started()
	go func() { srvDone <- fl.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-srvDone; err != nil {
			t.Errorf("sip server: %v", err)
		}
		if err := <-engDone; err != nil {
			t.Errorf("engine: %v", err)
		}
		_ = st.Close()
	})
	waitListening(t, fl.addr)
	return fl
}

func (fl *sipFloor) Engine() *routing.Engine          { return fl.eng }
func (fl *sipFloor) Presence() *presence.Service      { return fl.svc }
func (fl *sipFloor) Capabilities() media.Capabilities { return fl.srv.Capabilities() }
func (fl *sipFloor) RingTimeout() time.Duration       { return sipRingTimeout }

// Elapse: the clock is real, and sipp's late answer comes by itself.
func (fl *sipFloor) Elapse(*testing.T, time.Duration) {}

var sippScenario = map[floortest.Behaviour]string{
	// An answering phone takes whatever it is offered: the trunk caller's
	// SDP, the anchor's, or none (an outbound call's agent leg);
	// agent_answer.xml, which insists on the caller's, is for sipp_call_test.
	floortest.Answer: "agent_answer_late.xml", floortest.AnswerLate: "agent_answer_late.xml",
	floortest.RingOut: "agent_noanswer.xml", floortest.NoAnswer: "agent_unavailable.xml",
	floortest.Busy: "agent_busy.xml", floortest.Decline: "agent_decline.xml",
}

// Device registers the user's sipp phone (once per floor) and has it
// play the behaviour's scenario for one call; an unregistered device
// has no contact at all.
func (fl *sipFloor) Device(t *testing.T, user string, b floortest.Behaviour) {
	t.Helper()
	fl.stopPlaying(t, user)
	fl.mu.Lock()
	port := fl.phones[user]
	fl.mu.Unlock()
	if b == floortest.Unregistered {
		if port != 0 {
			fl.h().unregister(t, user, port)
			fl.mu.Lock()
			delete(fl.phones, user)
			fl.mu.Unlock()
		}
		return
	}
	if port == 0 {
		port = testpeer.FreeUDPPort(t)
		fl.h().register(t, user, port)
		fl.mu.Lock()
		fl.phones[user] = port
		fl.mu.Unlock()
	}
	fl.play(t, user, port, b)
}

// Number has the trunk's far end (a sipp phone on the outbound trunk's
// port) play the behaviour for one call to number.
func (fl *sipFloor) Number(t *testing.T, number string, b floortest.Behaviour) {
	t.Helper()
	fl.stopPlaying(t, "trunk")
	fl.play(t, "trunk", fl.trunkPort, b)
}

// stopPlaying ends the scenario a phone still plays (never rung) or
// checks the one it finished: its port is needed again.
func (fl *sipFloor) stopPlaying(t *testing.T, key string) {
	t.Helper()
	fl.mu.Lock()
	prev := fl.playing[key]
	delete(fl.playing, key)
	fl.mu.Unlock()
	if prev == nil {
		return
	}
	select {
	case <-prev.done:
		if prev.err != nil {
			t.Errorf("phone %s: %v\n%s", key, prev.err, prev.traces())
		}
	default:
		_ = prev.cmd.Process.Kill()
		<-prev.done
	}
}

// play runs the behaviour's scenario once on port, as phone key.
func (fl *sipFloor) play(t *testing.T, key string, port int, b floortest.Behaviour) {
	t.Helper()
	args := []string{"-sf", scenario(sippScenario[b]), "-m", "1", "-key", "agent", key}
	switch b {
	case floortest.AnswerLate:
		args = append(args, "-d", strconv.Itoa(int(sipLateAnswer/time.Millisecond)))
	case floortest.Answer:
		args = append(args, "-d", "200")
	}
	p := startSipp(t, key+" "+b.String(), port, args...)
	// Runs before startSipp's kill: a phone whose scenario already
	// failed fails the test, one still playing is let go.
	t.Cleanup(func() {
		fl.mu.Lock()
		current := fl.playing[key] == p
		fl.mu.Unlock()
		select {
		case <-p.done:
			if current && p.err != nil {
				t.Errorf("phone %s: %v\n%s", key, p.err, p.traces())
			}
		default:
		}
	})
	fl.mu.Lock()
	fl.playing[key] = p
	fl.mu.Unlock()
}

// Vanish kills the user's sipp phone mid-call: no BYE, its port gone.
// The session timer (shortened here to 2 s) finds the dialog dead.
func (fl *sipFloor) Vanish(t *testing.T, user string) {
	t.Helper()
	fl.mu.Lock()
	p := fl.playing[user]
	delete(fl.playing, user)
	fl.mu.Unlock()
	if p == nil {
		t.Fatalf("no phone plays for %s", user)
	}
	p.kill()
}

// h is the harness view the sipp helpers need.
func (fl *sipFloor) h() *harness { return &harness{srv: fl.srv, addr: fl.addr, port: fl.port} }

// Cleared waits for the user's phone to finish its scenario: a ring
// that was cancelled, or a call that ended with a BYE.
func (fl *sipFloor) Cleared(t *testing.T, user string) {
	t.Helper()
	fl.mu.Lock()
	p := fl.playing[user]
	fl.mu.Unlock()
	if p == nil {
		t.Fatalf("no phone plays for %s", user)
	}
	p.wait(t, 20*time.Second)
}

func (fl *sipFloor) Call(t *testing.T, hotline string) floortest.Caller {
	t.Helper()
	fl.mu.Lock()
	fl.callers++
	n := fl.callers
	fl.mu.Unlock()
	return dialTrunk(t, fl.port, hotline, fmt.Sprintf("+8490700%04d", n))
}

// trunkCall is a trunk's call into callfloor over UDP from loopback (a
// trunk source), with the SDP the sipp agent scenarios check for.
type trunkCall struct {
	ua       *sipgo.UserAgent
	conn     net.PacketConn
	served   chan struct{}
	call     *sipgo.DialogClientSession
	cancel   context.CancelFunc // stops waiting for the answer: CANCEL
	answered chan struct{}      // closed once the 200 was ACKed
	done     chan error         // the answer wait's end
}

const trunkSDP = "v=0\r\no=caller 53655765 2353687637 IN IP4 127.0.0.1\r\ns=caller-offer\r\nc=IN IP4 127.0.0.1\r\n" +
	"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

func dialTrunk(t *testing.T, port int, hotline, from string) *trunkCall {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).Port
	c := &trunkCall{conn: conn, served: make(chan struct{}), answered: make(chan struct{}), done: make(chan error, 1)}
	c.ua, err = sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger())),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger())))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(c.ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(local), sipgo.WithClientLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(c.ua, sipgo.WithServerLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	dcli := sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: "127.0.0.1", Port: local}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if dcli.ReadBye(req, tx) != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
		}
	})
	go func() {
		defer close(c.served)
		_ = srv.ServeUDP(conn)
	}()
	t.Cleanup(c.close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ct := sip.ContentTypeHeader("application/sdp")
	fromH := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: "127.0.0.1"}}
	fromH.Params.Add("tag", sip.GenerateTagN(8))
	c.call, err = dcli.Invite(ctx, sip.Uri{Scheme: "sip", User: hotline, Host: "127.0.0.1", Port: port}, []byte(trunkSDP), &ct, fromH)
	if err != nil {
		t.Fatalf("INVITE %s: %v", hotline, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	c.cancel = wcancel
	go func() {
		err := c.call.WaitAnswer(wctx, sipgo.AnswerOptions{})
		if err == nil {
			err = c.call.Ack(context.Background())
			close(c.answered)
		}
		c.done <- err
	}()
	return c
}

// Hangup: BYE once answered, else CANCEL (sipgo sends it when the wait
// for the answer is cancelled, once a provisional response came).
func (c *trunkCall) Hangup(t *testing.T) {
	t.Helper()
	select {
	case <-c.answered:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.call.Bye(ctx); err != nil {
			t.Fatalf("caller BYE: %v", err)
		}
		return
	default:
	}
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("caller CANCEL: %v", err)
		}
		if err == nil { // answered before the wait saw the cancel
			c.Hangup(t)
			return
		}
		if r := c.call.InviteResponse; r != nil && r.IsSuccess() {
			// The 200 crossed the CANCEL (a waiting caller is answered on
			// entry where callers hear music): the call is up, end it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.call.Ack(ctx); err != nil {
				t.Fatalf("caller ACK after CANCEL: %v", err)
			}
			if err := c.call.Bye(ctx); err != nil {
				t.Fatalf("caller BYE after CANCEL: %v", err)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("caller CANCEL: no answer")
	}
}

func (c *trunkCall) close() {
	c.cancel()
	c.ua.Close()
	c.conn.Close()
	<-c.served
}
