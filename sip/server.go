package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/rtpanchor"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Server is the SIP registrar and B2BUA. It implements media.Media.
type Server struct {
	cfg   Config
	opts  options
	dir   Directory
	facts media.Facts
	log   *slog.Logger

	host      string // listen IP, for Via and Contact
	port      int
	laddr     sip.Addr // forces UDP requests out of the listening socket
	trunkNets []netip.Prefix

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client

	auth      *authenticator
	reg       *registrar
	malformed *malformedState

	mu       sync.Mutex
	inLegs   map[media.LegID]*inLeg
	outLegs  map[media.LegID]*outLeg
	byCallID map[string]dialogRef // SIP Call-ID → leg (or dial branch)
	bound    map[string]*inLeg    // routing call id → its customer leg
	// callSessions: routing call id → the anchored session of its legs
	// (WithMediaAnchor only).
	callSessions map[string]*rtpanchor.Session
	arriving     map[string]*arriving // INVITEs being admitted, by inviteKey (CANCEL races)

	draining atomic.Bool
	running  atomic.Bool
	handover atomic.Bool // HandOver: stop without ending calls
	restored atomic.Bool // restoreDialogs ran (UnsavedEnds)
	dialogs  *dialogWriter
	// baseCtx ends when shutdown gives up waiting; background work
	// (retransmissions, BYE, CANCEL) watches it.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	work       group // request handlers and background goroutines
}

// dialogRef points at whichever leg owns a SIP Call-ID.
type dialogRef struct {
	in     *inLeg
	branch *branch
}

// New builds a Server; Run starts it.
func New(cfg Config, dir Directory, facts media.Facts, opts ...Option) (*Server, error) {
	if dir == nil || facts == nil {
		return nil, errors.New("sip: directory and facts are required")
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	o := options{log: slog.Default(), now: time.Now, sweepEvery: time.Second, nonceTTL: 5 * time.Minute, maxAuthFailures: 3, drainTimeout: 5 * time.Second,
		backoffBase: 250 * time.Millisecond, backoffMax: 2 * time.Second}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	o.session = sessionTiming{expires: cfg.SessionExpires, minSE: MinSessionExpires, probeTimeout: defaultProbeTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.obs == nil {
		o.obs = media.NopObserver{}
	}
	nets, err := parseSources(cfg.TrunkSources)
	if err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("sip: addr %q: bad port", cfg.Addr)
	}
	s := &Server{
		cfg: cfg, opts: o, dir: dir, facts: facts, log: o.log.With("component", "sip"),
		host: host, port: port, trunkNets: nets,
		laddr:        sip.Addr{IP: net.ParseIP(host), Port: port, Hostname: host},
		inLegs:       make(map[media.LegID]*inLeg),
		outLegs:      make(map[media.LegID]*outLeg),
		byCallID:     make(map[string]dialogRef),
		bound:        make(map[string]*inLeg),
		callSessions: make(map[string]*rtpanchor.Session),
		arriving:     make(map[string]*arriving),
	}
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.dialogs = newDialogWriter(s)
	s.auth = newAuthenticator(cfg.Domain, o.nonceTTL, o.maxAuthFailures, o.now)
	s.auth.backoffBase, s.auth.backoffMax = o.backoffBase, o.backoffMax
	s.malformed = &malformedState{log: s.log, obs: o.packets, now: o.now, sources: map[string]*malformedSource{}}
	transportLog := slog.New(&malformedLog{next: s.log.Handler(), st: s.malformed})
	s.reg = newRegistrar(s)
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent("callfloor"),
		sipgo.WithUserAgentHostname(cfg.Domain),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(s.log), sip.WithTransactionLayerUnhandledResponseHandler(s.strayResponse)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(transportLog)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	s.cli, err = sipgo.NewClient(s.ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(port), sipgo.WithClientLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS, sip.UPDATE} {
		s.srv.OnRequest(m, s.tracked)
	}
	s.srv.OnNoRoute(s.tracked)
	return s, nil
}

// Run listens on UDP and TCP and serves until ctx ends. Shutdown is two
// phases: new calls are refused (503) while live calls are ended (BYE,
// CANCEL, 480) for up to the drain timeout; then the transports close.
// Run returns after every goroutine it started has stopped.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sip: server already ran")
	}
	udp, tcp, err := s.listen(ctx)
	if err != nil {
		return err
	}
	s.log.Info("sip listening", "addr", s.cfg.Addr, "domain", s.cfg.Domain)
	if err := s.reg.restore(ctx); err != nil {
		s.log.Warn("sip: restoring stored registrations", "err", err)
	}
	// Before serving: an in-dialog request must find its restored leg.
	restored, err := s.restoreDialogs(ctx)
	if err != nil {
		s.baseCancel()
		udp.Close()
		tcp.Close()
		s.ua.Close()
		return err
	}
	s.opts.obs.Connected(true)
	defer s.opts.obs.Connected(false)

	var serving sync.WaitGroup
	serveErr := make(chan error, 2)
	writerStop := make(chan struct{})
	if s.opts.dialogs != nil {
		serving.Add(1)
		go func() { defer serving.Done(); s.dialogs.run(writerStop) }()
	}
	serving.Add(3)
	reading := make(chan struct{})
	go func() {
		defer serving.Done()
		serveErr <- s.srv.ServeUDP(&sourceConn{PacketConn: udp, st: s.malformed, reading: reading})
	}()
	go func() { defer serving.Done(); serveErr <- s.srv.ServeTCP(tcp) }()
	sweepStop := make(chan struct{})
	go func() { defer serving.Done(); s.sweepLoop(sweepStop) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("sip: transport stopped: %w", err)
	case <-reading:
		// Serving: the restored legs may send (BYE, refreshes) now.
		restored()
		select {
		case <-ctx.Done():
		case err := <-serveErr:
			runErr = fmt.Errorf("sip: transport stopped: %w", err)
		}
	}

	// Phase 1: refuse new calls. Phase 2: end the live ones — unless
	// they are handed over to the next owner, who restores them from the
	// store (HandOver).
	s.draining.Store(true)
	drainCtx, cancel := context.WithTimeout(context.Background(), s.opts.drainTimeout)
	if !s.handover.Load() {
		s.endAllCalls(drainCtx)
	}
	cancel()
	s.baseCancel()
	close(sweepStop)
	s.work.closeAndWait()
	close(writerStop)
	if s.opts.dialogs != nil && !s.handover.Load() {
		// The ends of the calls just hung up, written before the
		// transports close (bounded: the store may be the reason we stop).
		flushCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.dialogs.flush(flushCtx)
		cancel()
	}

	// Phase 3: transports.
	udp.Close()
	tcp.Close()
	s.ua.Close()
	serving.Wait()
	s.log.Info("sip stopped")
	return runErr
}

// listen binds the UDP and TCP listeners. An address in use is retried
// until ctx ends: the replica taking the media lease over from a frozen
// owner on the same host (README.md, "The SIP listener in production")
// binds once the old owner notices it lost the lease and lets go.
func (s *Server) listen(ctx context.Context) (net.PacketConn, net.Listener, error) {
	warned := false
	for {
		udp, err := net.ListenPacket("udp", s.cfg.Addr)
		if err == nil {
			tcp, terr := net.Listen("tcp", s.cfg.Addr)
			if terr == nil {
				return udp, tcp, nil
			}
			udp.Close()
			err = fmt.Errorf("sip: listen tcp %s: %w", s.cfg.Addr, terr)
		} else {
			err = fmt.Errorf("sip: listen udp %s: %w", s.cfg.Addr, err)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
		if !warned {
			s.log.Warn("sip: address in use, waiting for it", "addr", s.cfg.Addr)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sweepLoop expires registrations, nonces and auth failure counts.
func (s *Server) sweepLoop(stop <-chan struct{}) {
	t := time.NewTicker(s.opts.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			now := s.opts.now()
			s.reg.sweep(now)
			s.auth.sweep(now)
		}
	}
}

// Contacts lists the registered contact URIs of agentID.
func (s *Server) Contacts(agentID string) []string {
	bs := s.reg.lookup(agentID)
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.uri.String()
	}
	return out
}

// report hands a fact to routing.
func (s *Server) report(f media.Fact) { s.facts.Report(f) }

func (s *Server) now() time.Time { return s.opts.now() }

// strayResponse handles responses no transaction matches: 2xx
// retransmissions after our INVITE transaction ended are harmless.
func (s *Server) strayResponse(res *sip.Response) {
	s.log.Debug("stray response", "status", res.StatusCode, "call_id", callIDOf(res))
}

// goBackground runs f as tracked background work; false when shutting down.
func (s *Server) goBackground(f func()) bool {
	if !s.work.enter() {
		return false
	}
	go func() {
		defer s.work.leave()
		f()
	}()
	return true
}

// contactHeader is our Contact for transport tp.
func (s *Server) contactHeader(tp string) *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: "callfloor", Host: s.host, Port: s.port}
	if tp != "" && !equalFold(tp, "udp") {
		u.UriParams = sip.HeaderParams{{K: "transport", V: lower(tp)}}
	}
	return &sip.ContactHeader{Address: u}
}

// send prepares an out-of-dialog or in-dialog request we originate: Via
// with our listen address, the UDP listening socket as source.
func (s *Server) prepare(req *sip.Request, transport, dest string) {
	req.SetTransport(upper(transport))
	if dest != "" {
		req.SetDestination(dest)
	}
	if equalFold(transport, "udp") {
		s.laddr.Copy(&req.Laddr)
	}
	if req.MaxForwards() == nil {
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
	}
	if req.Body() == nil {
		req.SetBody(nil)
	}
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: upper(transport), Host: s.host, Port: s.port}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	req.PrependHeader(via)
}

// noBuild keeps sipgo from adding headers to requests we built fully.
func noBuild(*sipgo.Client, *sip.Request) error { return nil }

// group tracks goroutines and refuses new ones once closed, so shutdown
// can wait for all of them without racing Add against Wait.
type group struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (g *group) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *group) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

func (g *group) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	zero := make(chan struct{})
	g.zero = zero
	g.mu.Unlock()
	<-zero
}
