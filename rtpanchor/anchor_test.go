package rtpanchor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/internal/rtpphone"
	"github.com/callfloor/callfloor/rtpanchor/internal/genmusic/music"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Tone of each party in the tests: multiples of 50 Hz, so a single
// 160-sample frame holds whole cycles and the Goertzel bins do not leak
// into each other.
const (
	fCustomer = 400
	fAgent    = 700
	fSup      = 1000
	fAgent2   = 1300
)

type recorder struct {
	mu      sync.Mutex
	digits  []rune
	gone    []string
	refused atomic.Int64
	active  atomic.Int64
	late    atomic.Int64
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) DTMF(l *Leg, d rune, _ time.Duration) {
	r.mu.Lock()
	r.digits = append(r.digits, d)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) LegGone(l *Leg) {
	r.mu.Lock()
	r.gone = append(r.gone, l.Name)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) CallRefused()              { r.refused.Add(1) }
func (r *recorder) CallsActive(n int)         { r.active.Store(int64(n)) }
func (r *recorder) FrameLate(d time.Duration) { r.late.Add(1) }

func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("waiting for %s", what)
		}
	}
}

// newTestAnchor starts an anchor on loopback with a port range of its own.
func newTestAnchor(t testing.TB, cfg Config, opts ...Option) (*Anchor, *recorder) {
	t.Helper()
	rec := newRecorder()
	cfg.Addr = netip.MustParseAddr("127.0.0.1")
	if cfg.PortMin == 0 {
		cfg.PortMin = 21000 + 2*rand.IntN(3000)
		cfg.PortMax = cfg.PortMin + 999
	}
	a, err := New(cfg, rec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, rec
}

// dial points phone p at leg l and gives l the phone's SDP.
func dial(t *testing.T, p *rtpphone.Phone, l *Leg) {
	t.Helper()
	p.SendTo(l.Local())
	if err := l.SetRemote(p.Addr(), Codec(p.Codec), p.EventPT, SendRecv); err != nil {
		t.Fatal(err)
	}
}

// call is a session with one phone per leg.
type call struct {
	s      *Session
	legs   []*Leg
	phones []*rtpphone.Phone
}

func newCall(t *testing.T, a *Anchor, h Handler, phones ...*rtpphone.Phone) *call {
	t.Helper()
	s, err := a.NewSession(h)
	if err != nil {
		t.Fatal(err)
	}
	c := &call{s: s}
	for i, p := range phones {
		l, err := s.NewLeg(string(rune('a' + i)))
		if err != nil {
			t.Fatal(err)
		}
		dial(t, p, l)
		c.legs = append(c.legs, l)
		c.phones = append(c.phones, p)
	}
	return c
}

func TestRelayTwoParties(t *testing.T) {
	a, _ := newTestAnchor(t, Config{})
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101)
	c := newCall(t, a, nil, cust, agent)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	heardByCust, heardByAgent := cust.Listen(25), agent.Listen(25)
	rtpphone.AssertHears(t, "customer", heardByCust, fAgent)
	rtpphone.AssertDoesNotHear(t, "customer", heardByCust, fCustomer)
	rtpphone.AssertHears(t, "agent", heardByAgent, fCustomer)
	rtpphone.AssertDoesNotHear(t, "agent", heardByAgent, fAgent)
}

func TestPCMUAndPCMAInteroperate(t *testing.T) {
	a, _ := newTestAnchor(t, Config{})
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMA), 101)
	c := newCall(t, a, nil, cust, agent)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	// The phones' recorders fail the test if a packet arrives in the
	// codec they did not negotiate.
	rtpphone.AssertHears(t, "PCMU customer", cust.Listen(25), fAgent)
	rtpphone.AssertHears(t, "PCMA agent", agent.Listen(25), fCustomer)
}

// supervised starts customer, agent and supervisor phones in one session,
// customer and agent relayed.
func supervised(t *testing.T) (*call, *rtpphone.Phone, *rtpphone.Phone, *rtpphone.Phone) {
	a, _ := newTestAnchor(t, Config{})
	cust, agent, sup := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMA), 101), rtpphone.New(t, fSup, uint8(PCMU), 101)
	c := newCall(t, a, nil, cust, agent, sup)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	return c, cust, agent, sup
}

func TestMonitorModes(t *testing.T) {
	type hearing struct{ cust, agent, sup []float64 }
	cases := []struct {
		mode  MonitorMode
		hears hearing // tones each must hear
		not   hearing // tones each must not hear
	}{
		{Listen,
			hearing{cust: []float64{fAgent}, agent: []float64{fCustomer}, sup: []float64{fCustomer, fAgent}},
			hearing{cust: []float64{fSup}, agent: []float64{fSup}}},
		{Whisper,
			hearing{cust: []float64{fAgent}, agent: []float64{fCustomer, fSup}, sup: []float64{fCustomer, fAgent}},
			hearing{cust: []float64{fSup}}},
		{Barge,
			hearing{cust: []float64{fAgent, fSup}, agent: []float64{fCustomer, fSup}, sup: []float64{fCustomer, fAgent}},
			hearing{}},
		{Pause,
			hearing{cust: []float64{fAgent}, agent: []float64{fCustomer}},
			hearing{cust: []float64{fSup}, agent: []float64{fSup}, sup: []float64{fCustomer, fAgent}}},
	}
	for _, tc := range cases {
		t.Run(string(tc.mode), func(t *testing.T) {
			c, cust, agent, sup := supervised(t)
			if err := c.s.Monitor(c.legs[2], c.legs[0], c.legs[1], tc.mode); err != nil {
				t.Fatal(err)
			}
			heard := map[string][]int16{"customer": cust.Listen(25), "agent": agent.Listen(25), "supervisor": sup.Listen(25)}
			for who, fs := range map[string][]float64{"customer": tc.hears.cust, "agent": tc.hears.agent, "supervisor": tc.hears.sup} {
				for _, f := range fs {
					rtpphone.AssertHears(t, who, heard[who], f)
				}
			}
			for who, fs := range map[string][]float64{"customer": tc.not.cust, "agent": tc.not.agent, "supervisor": tc.not.sup} {
				for _, f := range fs {
					rtpphone.AssertDoesNotHear(t, who, heard[who], f)
				}
			}
		})
	}
}

// Switching modes on a live call: listen → whisper → barge → pause →
// listen (resume), the way a supervisor uses the console.
func TestMonitorModeChangesOnALiveCall(t *testing.T) {
	c, cust, agent, sup := supervised(t)
	set := func(m MonitorMode) {
		t.Helper()
		if err := c.s.Monitor(c.legs[2], c.legs[0], c.legs[1], m); err != nil {
			t.Fatal(err)
		}
	}
	set(Listen)
	rtpphone.AssertDoesNotHear(t, "agent in listen", agent.Listen(20), fSup)
	set(Whisper)
	rtpphone.AssertHears(t, "agent in whisper", agent.Listen(20), fSup)
	rtpphone.AssertDoesNotHear(t, "customer in whisper", cust.Listen(20), fSup)
	set(Barge)
	rtpphone.AssertHears(t, "customer in barge", cust.Listen(20), fSup)
	set(Pause)
	p := sup.Listen(20)
	rtpphone.AssertDoesNotHear(t, "paused supervisor", p, fCustomer)
	rtpphone.AssertDoesNotHear(t, "paused supervisor", p, fAgent)
	set(Listen)
	rtpphone.AssertHears(t, "resumed supervisor", sup.Listen(20), fCustomer)
}

func TestMuteSilencesALegForEveryone(t *testing.T) {
	c, cust, agent, _ := supervised(t)
	if err := c.s.Monitor(c.legs[2], c.legs[0], c.legs[1], Barge); err != nil {
		t.Fatal(err)
	}
	if err := c.s.Mute(c.legs[0], true); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertDoesNotHear(t, "agent with customer muted", agent.Listen(20), fCustomer)
	rtpphone.AssertHears(t, "muted customer still hears", cust.Listen(20), fAgent)
	if err := c.s.Mute(c.legs[0], false); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "agent after unmute", agent.Listen(20), fCustomer)
}

func TestTakeOverKeepsTheCustomerHearing(t *testing.T) {
	c, cust, agent, sup := supervised(t)
	if err := c.s.Monitor(c.legs[2], c.legs[0], c.legs[1], Listen); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "customer before take over", cust.Listen(10), fAgent)
	// Keep recording across the switch.
	before := cust.Frames()
	if err := c.s.Replace(c.legs[1], c.legs[2]); err != nil {
		t.Fatal(err)
	}
	c.legs[1].Close()
	cust.WaitFor("audio after take over", func(h *rtpphone.Heard) bool { return len(h.Frames) >= before+25 })
	if gap, ok := cust.Gap(fAgent, fSup); !ok || gap >= 200*time.Millisecond {
		t.Errorf("take over gap %v (heard agent then supervisor: %v), want < 200ms", gap, ok)
	} else {
		t.Logf("take over gap on the customer's RTP clock: %v", gap)
	}
	rtpphone.AssertHears(t, "customer after take over", cust.Listen(20), fSup)
	s := sup.Listen(20)
	rtpphone.AssertHears(t, "supervisor after take over", s, fCustomer)
	rtpphone.AssertDoesNotHear(t, "supervisor after take over", s, fAgent)
	_ = agent
}

func TestTransferReplacesTheAgent(t *testing.T) {
	a, _ := newTestAnchor(t, Config{})
	cust, agent, agent2 := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101), rtpphone.New(t, fAgent2, uint8(PCMA), 101)
	c := newCall(t, a, nil, cust, agent, agent2)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	// The new agent's leg is up but routed nowhere (being dialled).
	rtpphone.AssertDoesNotHear(t, "customer before transfer", cust.Listen(10), fAgent2)
	before := cust.Frames()
	if err := c.s.Replace(c.legs[1], c.legs[2]); err != nil {
		t.Fatal(err)
	}
	c.legs[1].Close()
	cust.WaitFor("audio after transfer", func(h *rtpphone.Heard) bool { return len(h.Frames) >= before+25 })
	if gap, ok := cust.Gap(fAgent, fAgent2); !ok || gap >= 200*time.Millisecond {
		t.Errorf("transfer gap %v (heard old then new agent: %v), want < 200ms", gap, ok)
	}
	rtpphone.AssertHears(t, "new agent", agent2.Listen(20), fCustomer)
	after := cust.Listen(20)
	rtpphone.AssertHears(t, "customer after transfer", after, fAgent2)
	rtpphone.AssertDoesNotHear(t, "customer after transfer", after, fAgent)
}

func TestMusicAndRingback(t *testing.T) {
	tone, err := ToneClip(Cadence{F1: 650, On: 1000})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAnchor(t, Config{Music: tone})
	caller := rtpphone.New(t, fCustomer, uint8(PCMA), 0)
	c := newCall(t, a, nil, caller)
	if err := c.s.PlayMusic(c.legs[0]); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "caller on music", caller.Listen(20), 650)
	if err := c.s.PlayRingback(c.legs[0]); err != nil {
		t.Fatal(err)
	}
	rb := caller.Listen(20) // the first 400 ms of the 2 s "on" part
	rtpphone.AssertHears(t, "caller on ringback", rb, 440)
	rtpphone.AssertHears(t, "caller on ringback", rb, 480)
	if err := c.s.Stop(c.legs[0]); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertDoesNotHear(t, "caller after stop", caller.Listen(20), 440)
}

// Click-to-call: the agent is dialled first and hears ringback while the
// customer rings; then both are relayed.
func TestClickToCallBridge(t *testing.T) {
	a, _ := newTestAnchor(t, Config{})
	agent, cust := rtpphone.New(t, fAgent, uint8(PCMA), 101), rtpphone.New(t, fCustomer, uint8(PCMU), 101)
	s, err := a.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	agentLeg, _ := s.NewLeg("agent")
	dial(t, agent, agentLeg)
	if err := s.PlayRingback(agentLeg); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "agent while the customer rings", agent.Listen(20), 440)
	custLeg, _ := s.NewLeg("customer")
	dial(t, cust, custLeg)
	if err := s.Relay(agentLeg, custLeg); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "agent after answer", agent.Listen(20), fCustomer)
	rtpphone.AssertHears(t, "customer after answer", cust.Listen(20), fAgent)
}

func TestDTMFReportedAndPassedThrough(t *testing.T) {
	a, _ := newTestAnchor(t, Config{})
	rec := newRecorder()
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMA), 96)
	c := newCall(t, a, rec, cust, agent)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	agent.Listen(5) // audio flowing
	cust.SendDTMF(5)
	cust.SendDTMF(11)
	rec.waitFor(t, "two digits", func() bool { return len(rec.digits) >= 2 })
	if string(rec.digits) != "5#" {
		t.Errorf("digits %q, want \"5#\" (each reported once although the end packet repeats)", string(rec.digits))
	}
	agent.WaitFor("both events relayed", func(h *rtpphone.Heard) bool {
		ends := 0
		for _, e := range h.Events {
			if e.Payload[1]&0x80 != 0 {
				ends++
			}
		}
		return ends >= 6
	})
	starts := map[uint32]byte{}
	for _, e := range agent.Heard().Events {
		if e.PT != 96 {
			t.Fatalf("event relayed with payload type %d, want the agent's 96", e.PT)
		}
		if code, ok := starts[e.TS]; ok && code != e.Payload[0] {
			t.Fatalf("two events share timestamp %d", e.TS)
		}
		starts[e.TS] = e.Payload[0]
	}
	if len(starts) != 2 {
		t.Errorf("relayed %d distinct events, want 2", len(starts))
	}
}

func TestLatchesToWhereRTPComesFrom(t *testing.T) {
	a, _ := newTestAnchor(t, Config{})
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101)
	c := newCall(t, a, nil, cust, agent)
	// The customer's SDP names an address it does not send from (NAT).
	if err := c.legs[0].SetRemote(netip.MustParseAddrPort("127.0.0.1:9"), PCMU, 101, SendRecv); err != nil {
		t.Fatal(err)
	}
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "customer behind NAT", cust.Listen(20), fAgent)
	if got := c.legs[0].Remote(); got != cust.Addr() {
		t.Errorf("latched to %v, want %v", got, cust.Addr())
	}
}

func TestHoldStopsSendingAndInactivityWaits(t *testing.T) {
	a, rec := newTestAnchor(t, Config{Inactivity: time.Second})
	h := newRecorder()
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101)
	c := newCall(t, a, h, cust, agent)
	_ = rec
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	cust.Listen(5)
	// The customer's phone holds with a=inactive: it neither sends nor
	// wants audio, and that is not a ghost.
	cust.SetMuted(true)
	if err := c.legs[0].SetRemote(cust.Addr(), PCMU, 101, Inactive); err != nil {
		t.Fatal(err)
	}
	agent.Listen(100) // 2 s of the anchor's clock: two inactivity checks past the timeout
	cust.Clear()
	agent.Listen(10)
	sentWhileHeld := cust.Frames()
	if sentWhileHeld > 2 { // frames already on the wire when hold applied
		t.Errorf("anchor sent %d frames to a phone on hold", sentWhileHeld)
	}
	h.mu.Lock()
	gone := len(h.gone)
	h.mu.Unlock()
	if gone != 0 {
		t.Errorf("a held leg was reported gone")
	}
}

func TestSilentLegReportedGone(t *testing.T) {
	a, _ := newTestAnchor(t, Config{Inactivity: time.Second})
	h := newRecorder()
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101)
	c := newCall(t, a, h, cust, agent)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	agent.Listen(5)
	cust.SetMuted(true) // the customer's phone vanished without a BYE
	h.waitFor(t, "customer leg gone", func() bool { return len(h.gone) > 0 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.gone) != 1 || h.gone[0] != c.legs[0].Name {
		t.Errorf("gone legs %v, want only the customer's %q", h.gone, c.legs[0].Name)
	}
}

func TestUnwatchedLegIsNotReportedGone(t *testing.T) {
	a, _ := newTestAnchor(t, Config{Inactivity: time.Second})
	h := newRecorder()
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101)
	c := newCall(t, a, h, cust, agent)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	c.legs[0].WatchInactivity(false) // a caller in early media, only listening
	cust.SetMuted(true)
	agent.Listen(100) // 2 s of the anchor's clock: two checks past the 1 s timeout
	h.mu.Lock()
	gone := len(h.gone)
	h.mu.Unlock()
	if gone != 0 {
		t.Fatal("an unwatched leg was reported gone")
	}
	c.legs[0].WatchInactivity(true) // answered: from now on it must send
	h.waitFor(t, "watched silent leg gone", func() bool { return len(h.gone) == 1 })
}

func TestCapRefusesAndCounts(t *testing.T) {
	a, rec := newTestAnchor(t, Config{MaxCalls: 2})
	s1, err := a.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.NewSession(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.NewSession(nil); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("third call: %v, want ErrAtCapacity", err)
	}
	if rec.refused.Load() != 1 || rec.active.Load() != 2 {
		t.Errorf("refused %d active %d, want 1 and 2", rec.refused.Load(), rec.active.Load())
	}
	s1.Close()
	if _, err := a.NewSession(nil); err != nil {
		t.Errorf("after one call ended: %v", err)
	}
}

func TestPortRangeExhausted(t *testing.T) {
	a, _ := newTestAnchor(t, Config{PortMin: 0})
	a.Close()
	base := 21000 + 2*rand.IntN(3000)
	a, _ = newTestAnchor(t, Config{PortMin: base, PortMax: base + 3})
	s, _ := a.NewSession(nil)
	var legs []*Leg
	for {
		l, err := s.NewLeg("x")
		if errors.Is(err, ErrNoPorts) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		legs = append(legs, l)
		if len(legs) > 2 {
			t.Fatal("more legs than port pairs in the range")
		}
	}
	if len(legs) == 0 {
		t.Skip("someone else holds the ports")
	}
	legs[0].Close()
	if _, err := s.NewLeg("again"); err != nil {
		t.Errorf("a closed leg's ports are not reused: %v", err)
	}
}

func TestRTCPReportsAnswered(t *testing.T) {
	a, _ := newTestAnchor(t, Config{}, withRTCPEvery(5))
	cust, agent := rtpphone.New(t, fCustomer, uint8(PCMU), 101), rtpphone.New(t, fAgent, uint8(PCMU), 101)
	c := newCall(t, a, nil, cust, agent)
	if err := c.s.Relay(c.legs[0], c.legs[1]); err != nil {
		t.Fatal(err)
	}
	cust.WaitFor("a sender report with a reception block", func(h *rtpphone.Heard) bool {
		for _, r := range h.Reports {
			if len(r) >= 52 && r[1] == 200 && r[0]&0x1f == 1 {
				return true
			}
		}
		return false
	})
	for _, r := range cust.Heard().Reports {
		if len(r) < 52 || r[1] != 200 || r[0]&0x1f != 1 {
			continue
		}
		if src := binary.BigEndian.Uint32(r[28:32]); src != cust.SSRC {
			t.Errorf("report block about SSRC %x, want the phone's %x", src, cust.SSRC)
		}
		if !bytes.Contains(r, []byte("callfloor")) {
			t.Error("no SDES CNAME in the compound report")
		}
		return
	}
}

func TestDefaultMusicIsTheGeneratedOne(t *testing.T) {
	if !bytes.Equal(defaultMusicWAV, music.WAV()) {
		t.Fatal("music.wav differs from internal/genmusic's output: run go generate ./rtpanchor")
	}
	m := DefaultMusic()
	if m.Len() != 8*SampleRate {
		t.Errorf("default music is %d samples, want 8 s", m.Len())
	}
	if lv := rtpphone.ToneLevel(m.samples[:SampleRate/2], 261.63); lv < 500 {
		t.Errorf("first note (C4) level %.0f", lv)
	}
}
