package rtpanchor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// Errors of the anchor. ErrAtCapacity maps to SIP 503 (the cap protects
// the calls already up; it never degrades them).
var (
	ErrAtCapacity = errors.New("rtpanchor: at the cap of concurrent anchored calls")
	ErrNoPorts    = errors.New("rtpanchor: no free RTP port pair in the configured range")
	ErrClosed     = errors.New("rtpanchor: closed")
)

// Defaults for Config fields left zero.
const (
	DefaultPortMin    = 20000
	DefaultPortMax    = 29999
	DefaultMaxCalls   = 300
	DefaultInactivity = 30 * time.Second
)

// Config configures an Anchor.
type Config struct {
	// Addr is the address RTP sockets bind to and SDP advertises: the SIP
	// listener's address.
	Addr netip.Addr
	// PortMin and PortMax bound the RTP ports (inclusive). Each leg takes
	// an even port for RTP and the next odd one for RTCP.
	PortMin, PortMax int
	// MaxCalls caps concurrent sessions (anchored calls). NewSession
	// beyond it fails with ErrAtCapacity.
	MaxCalls int
	// Inactivity is how long a leg that should be sending may stay
	// silent before it is reported gone (Handler.LegGone).
	Inactivity time.Duration
	// Music is what PlayMusic plays; nil: DefaultMusic().
	Music *Clip
	// Ringback is what PlayRingback plays; nil: RingbackUS.
	Ringback *Clip
	// Workers is how many goroutines mix frames on each 20 ms tick;
	// 0: GOMAXPROCS.
	Workers int
}

// Observer is told about resource use (metrics). Its methods are called
// from the anchor's goroutines and must not block.
type Observer interface {
	// CallRefused: NewSession hit MaxCalls.
	CallRefused()
	// CallsActive: the number of sessions changed.
	CallsActive(n int)
	// FrameLate: a tick's frames were all sent only late after their
	// 20 ms deadline (the clock is overloaded).
	FrameLate(late time.Duration)
}

type nopObserver struct{}

func (nopObserver) CallRefused()            {}
func (nopObserver) CallsActive(int)         {}
func (nopObserver) FrameLate(time.Duration) {}

// Anchor owns the RTP sockets of every anchored leg and the clock that
// mixes them. Goroutines: one clock, Workers mixers, and one reader per
// socket (two per leg); none per packet.
type Anchor struct {
	cfg Config
	obs Observer
	log *slog.Logger

	mu       sync.Mutex
	sessions []*Session // copy on write: the clock reads a snapshot
	ports    map[int]bool
	next     int
	closed   bool
	started  bool

	readers sync.WaitGroup
	done    chan struct{}
	stopped chan struct{}
	work    chan []*Session
	workers sync.WaitGroup
	tickWG  sync.WaitGroup
	// tickNo is written by the clock before it hands out work and read
	// by workers after receiving it (the channel orders the two).
	tickNo uint64
	// rtcpEvery: ticks between RTCP reports to each leg.
	rtcpEvery uint64
	// onTick, when set (benchmarks), gets each tick's mixing time.
	onTick func(busy time.Duration)
}

// Option tunes an Anchor.
type Option func(*Anchor)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(a *Anchor) { a.log = l } }

// withRTCPEvery shortens the RTCP report interval (tests).
func withRTCPEvery(ticks uint64) Option { return func(a *Anchor) { a.rtcpEvery = ticks } }

// withTickObserver reports each tick's mixing time (benchmarks).
func withTickObserver(f func(busy time.Duration)) Option { return func(a *Anchor) { a.onTick = f } }

// New starts an anchor. obs may be nil.
func New(cfg Config, obs Observer, opts ...Option) (*Anchor, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("rtpanchor: Addr is required")
	}
	if cfg.PortMin == 0 && cfg.PortMax == 0 {
		cfg.PortMin, cfg.PortMax = DefaultPortMin, DefaultPortMax
	}
	if cfg.PortMin%2 == 1 {
		cfg.PortMin++
	}
	if cfg.PortMin < 1024 || cfg.PortMax > 65535 || cfg.PortMax < cfg.PortMin+1 {
		return nil, fmt.Errorf("rtpanchor: port range %d-%d must hold at least one even/odd pair within 1024-65535", cfg.PortMin, cfg.PortMax)
	}
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = DefaultMaxCalls
	}
	if cfg.Inactivity <= 0 {
		cfg.Inactivity = DefaultInactivity
	}
	if cfg.Music == nil {
		cfg.Music = DefaultMusic()
	}
	if cfg.Ringback == nil {
		rb, err := ToneClip(RingbackUS)
		if err != nil {
			return nil, err
		}
		cfg.Ringback = rb
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if obs == nil {
		obs = nopObserver{}
	}
	a := &Anchor{
		cfg: cfg, obs: obs, log: slog.Default(),
		ports: map[int]bool{}, next: cfg.PortMin,
		done: make(chan struct{}), stopped: make(chan struct{}),
		work: make(chan []*Session), rtcpEvery: defaultRTCPEvery,
	}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// startLocked starts the clock and the mixing workers with the first
// session, so an anchor that never carries a call (a path built only to
// declare its capabilities) runs no goroutine. Caller holds a.mu.
func (a *Anchor) startLocked() {
	if a.started {
		return
	}
	a.started = true
	for range a.cfg.Workers {
		a.workers.Add(1)
		go a.mixWorker()
	}
	go a.clock()
}

// Addr is the address legs bind to.
func (a *Anchor) Addr() netip.Addr { return a.cfg.Addr }

// Music and Ringback are the configured clips.
func (a *Anchor) Music() *Clip    { return a.cfg.Music }
func (a *Anchor) Ringback() *Clip { return a.cfg.Ringback }

// Close ends every session, stops the clock and waits for every goroutine
// of the anchor to return.
func (a *Anchor) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	sessions, started := a.sessions, a.started
	a.mu.Unlock()
	for _, s := range sessions {
		s.Close()
	}
	if started {
		close(a.done)
		<-a.stopped
		close(a.work)
		a.workers.Wait()
	}
	a.readers.Wait()
	return nil
}

// Handler receives what a session's media reports. Methods are called
// from the anchor's goroutines with no lock held; they must return
// quickly but may call back into the Session.
type Handler interface {
	// DTMF: an RFC 4733 telephone-event ended on leg (reported once per
	// event even though the end packet is repeated).
	DTMF(leg *Leg, digit rune, duration time.Duration)
	// LegGone: leg should be sending RTP but has been silent for the
	// configured inactivity time.
	LegGone(leg *Leg)
}

// NewSession opens a mixing session: one conversation whose legs hear
// each other as routed. It counts against MaxCalls until Close.
func (a *Anchor) NewSession(h Handler) (*Session, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	if len(a.sessions) >= a.cfg.MaxCalls {
		a.mu.Unlock()
		a.obs.CallRefused()
		return nil, fmt.Errorf("%w (%d)", ErrAtCapacity, a.cfg.MaxCalls)
	}
	a.startLocked()
	s := &Session{a: a, h: h}
	a.sessions = append(append([]*Session(nil), a.sessions...), s)
	n := len(a.sessions)
	a.mu.Unlock()
	a.obs.CallsActive(n)
	return s, nil
}

func (a *Anchor) removeSession(s *Session) {
	a.mu.Lock()
	out := make([]*Session, 0, len(a.sessions))
	for _, x := range a.sessions {
		if x != s {
			out = append(out, x)
		}
	}
	a.sessions = out
	n := len(out)
	a.mu.Unlock()
	a.obs.CallsActive(n)
}

// Calls is the number of open sessions.
func (a *Anchor) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

// bindPair binds an even RTP port and the RTCP port above it from the
// configured range, skipping ports this anchor or anyone else holds.
func (a *Anchor) bindPair() (rtp, rtcp *net.UDPConn, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, ErrClosed
	}
	pairs := (a.cfg.PortMax - a.cfg.PortMin + 1) / 2
	for range pairs {
		p := a.next
		a.next += 2
		if a.next+1 > a.cfg.PortMax {
			a.next = a.cfg.PortMin
		}
		if a.ports[p] {
			continue
		}
		r, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.cfg.Addr, uint16(p))))
		if err != nil {
			continue
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.cfg.Addr, uint16(p+1))))
		if err != nil {
			r.Close()
			continue
		}
		a.ports[p] = true
		return r, c, nil
	}
	return nil, nil, ErrNoPorts
}

func (a *Anchor) releasePort(p int) {
	a.mu.Lock()
	delete(a.ports, p)
	a.mu.Unlock()
}

// clock runs the 20 ms frame loop. A tick hands the sessions to the
// workers in one chunk per worker and waits for all of them, so a tick
// that overruns its 20 ms is visible (FrameLate) instead of piling up.
func (a *Anchor) clock() {
	defer close(a.stopped)
	timer := time.NewTimer(FrameDuration)
	defer timer.Stop()
	next := time.Now().Add(FrameDuration)
	var tick uint64
	for {
		select {
		case <-a.done:
			return
		case <-timer.C:
		}
		tick++
		a.mu.Lock()
		sessions := a.sessions
		a.mu.Unlock()
		a.tickNo = tick
		began := time.Now()
		if n := len(sessions); n > 0 {
			chunk := (n + a.cfg.Workers - 1) / a.cfg.Workers
			for i := 0; i < n; i += chunk {
				a.tickWG.Add(1)
				a.work <- sessions[i:min(i+chunk, n)]
			}
			a.tickWG.Wait()
		}
		if a.onTick != nil {
			a.onTick(time.Since(began))
		}
		// The frames of this tick are due before the next one starts.
		deadline := next.Add(FrameDuration)
		if late := time.Since(deadline); late > 0 {
			a.obs.FrameLate(late)
			if late > 5*FrameDuration {
				// Hopelessly behind: resynchronise instead of bursting.
				next = time.Now()
			}
		}
		next = next.Add(FrameDuration)
		timer.Reset(time.Until(next))
	}
}

func (a *Anchor) mixWorker() {
	defer a.workers.Done()
	for chunk := range a.work {
		now, tick := time.Now(), a.tickNo
		for _, s := range chunk {
			s.tick(now, tick)
		}
		a.tickWG.Done()
	}
}
