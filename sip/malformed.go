package sip

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PacketObserver hears what the SIP path refuses, for metrics. It is
// called on the transport's read path: keep it cheap.
type PacketObserver interface {
	// MalformedPacket: a packet from source (a host, or "tcp" when the
	// transport does not say) could not be parsed as SIP.
	MalformedPacket(source string)
}

// WithPacketObserver installs a PacketObserver (default none).
func WithPacketObserver(o PacketObserver) Option { return func(opts *options) { opts.packets = o } }

// malformedEvery is how often one source's malformed packets are logged
// at most; the rest are counted and summarised in its next line.
const malformedEvery = time.Minute

// maxMalformedSources bounds the per-source log state under a flood from
// many addresses; beyond it sources share one entry.
const maxMalformedSources = 4096

// malformedLog watches the transport layer's log. sipgo logs every packet
// it cannot parse at ERROR with the packet's whole content; this turns
// each into one Observer count and at most one WARN line per source per
// malformedEvery, carrying the size and the parse error but never the
// content. Other records pass through.
type malformedLog struct {
	next slog.Handler
	udp  bool // the record comes from the UDP transport (caller attr)
	st   *malformedState
}

type malformedState struct {
	log      *slog.Logger
	obs      PacketObserver
	now      func() time.Time
	lastUDP  atomic.Pointer[string] // source of the packet the UDP reader handles now
	mu       sync.Mutex
	sources  map[string]*malformedSource
	sweptAt  time.Time
	overflow malformedSource
}

type malformedSource struct {
	logged     time.Time
	suppressed int
}

func (h *malformedLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *malformedLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "failed to parse" {
		if !h.next.Enabled(ctx, r.Level) {
			return nil
		}
		return h.next.Handle(ctx, r)
	}
	var size int
	var perr string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			size = len(a.Value.String())
		case "error":
			perr = a.Value.String()
		}
		return true
	})
	src := "tcp"
	if h.udp {
		src = "udp"
		if p := h.st.lastUDP.Load(); p != nil {
			src = *p
		}
	}
	h.st.record(src, size, perr)
	return nil
}

func (h *malformedLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	udp := h.udp
	for _, a := range attrs {
		if a.Key == "caller" {
			udp = strings.Contains(a.Value.String(), "UDP")
		}
	}
	return &malformedLog{next: h.next.WithAttrs(attrs), udp: udp, st: h.st}
}

func (h *malformedLog) WithGroup(name string) slog.Handler {
	return &malformedLog{next: h.next.WithGroup(name), udp: h.udp, st: h.st}
}

// record counts one malformed packet from src and logs it unless src was
// logged within malformedEvery.
func (m *malformedState) record(src string, size int, perr string) {
	if m.obs != nil {
		m.obs.MalformedPacket(src)
	}
	if len(perr) > 200 { // parse errors may quote a line of the packet
		perr = perr[:200] + "…"
	}
	now := m.now()
	m.mu.Lock()
	if now.Sub(m.sweptAt) > malformedEvery {
		for k, s := range m.sources {
			if now.Sub(s.logged) > malformedEvery && s.suppressed == 0 {
				delete(m.sources, k)
			}
		}
		m.sweptAt = now
	}
	s := m.sources[src]
	if s == nil {
		if len(m.sources) >= maxMalformedSources {
			s, src = &m.overflow, "(many sources)"
		} else {
			s = &malformedSource{}
			m.sources[src] = s
		}
	}
	if !s.logged.IsZero() && now.Sub(s.logged) < malformedEvery {
		s.suppressed++
		m.mu.Unlock()
		return
	}
	suppressed := s.suppressed
	s.logged, s.suppressed = now, 0
	m.mu.Unlock()
	m.log.Warn("sip: malformed packet dropped", "source", src, "bytes", size, "err", perr,
		"more_since_last_logged", suppressed, "next_log_after", malformedEvery)
}

// sourceConn records the source of each packet the UDP reader takes, so
// malformedLog can name it: sipgo's reader parses (and logs) each packet
// on the goroutine that read it, before reading the next.
type sourceConn struct {
	net.PacketConn
	st *malformedState
	// reading closes at the first read: sipgo has put the socket in its
	// pool by then, so requests we send leave from it.
	reading chan struct{}
	once    sync.Once
}

func (c *sourceConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.reading != nil {
		c.once.Do(func() { close(c.reading) })
	}
	n, addr, err := c.PacketConn.ReadFrom(b)
	if addr != nil {
		h := hostOf(addr.String())
		c.st.lastUDP.Store(&h)
	}
	return n, addr, err
}
