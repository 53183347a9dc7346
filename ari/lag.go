package ari

import (
	"bytes"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// DefaultMaxEventLag is how far behind Asterisk's events may be handled
// before new calls are refused (WithMaxEventLag). Under load Asterisk
// queues an application's events inside itself; when that queue grows,
// Asterisk soon stops answering SIP for everyone. Refusing new callers
// early (they get a fast 503) keeps the calls already up healthy.
const DefaultMaxEventLag = 2 * time.Second

// WithMaxEventLag sets DefaultMaxEventLag (0 or less: never refuse).
func WithMaxEventLag(d time.Duration) Option { return func(c *Client) { c.lag.max = d } }

// eventLag estimates how late events are handled. Asterisk stamps each
// event; the difference to our clock includes any clock offset between
// the hosts, so the smallest difference seen since connecting is taken
// as that offset and only the excess counts as lag.
type eventLag struct {
	max time.Duration

	mu       sync.Mutex
	base     time.Duration // smallest (handled − emitted) seen; the clock offset
	haveBase bool
	cur      time.Duration
}

// reset forgets the offset (a new connection, maybe a new Asterisk).
func (l *eventLag) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.haveBase, l.cur = false, 0
}

// observe records one event emitted at emitted and handled at now, and
// returns the lag.
func (l *eventLag) observe(emitted, now time.Time) time.Duration {
	d := now.Sub(emitted)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.haveBase || d < l.base {
		l.base, l.haveBase = d, true
	}
	l.cur = d - l.base
	return l.cur
}

// current is the last lag observed.
func (l *eventLag) current() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// over reports whether new calls should be refused.
func (l *eventLag) over() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max > 0 && l.cur > l.max
}

// eventTime reads an event's "timestamp" without decoding it again
// (zero when absent or unreadable).
func eventTime(data []byte) time.Time {
	const key = `"timestamp":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return time.Time{}
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}
	}
	t, err := time.Parse(ari.DateFormat, string(rest[:j]))
	if err != nil {
		return time.Time{}
	}
	return t
}

// refuse turns a new caller away while events lag (under c.mu): the
// channel is hung up at once with cause 41 (temporary failure: the trunk
// sees 503) and never reaches routing.
func (c *Client) refuse(id string) []media.Fact {
	delete(c.chans, id)
	c.obs.CallRefused("event_lag")
	if c.refusedLog.Allow(time.Now(), 10*time.Second) {
		c.log.Warn("refusing new calls: Asterisk's events are handled late", "lag", c.lag.current(), "max", c.lag.max, "channel", id)
	}
	c.hangupChannel(id, media.CauseFailed)
	return nil
}
