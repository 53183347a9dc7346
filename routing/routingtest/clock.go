// Package routingtest holds deterministic doubles for testing the routing
// engine: a fake clock whose timers fire only when the test advances it,
// and a media path that records every command and lets the test inject
// facts. They are test helpers, not a product path.
package routingtest

import (
	"sort"
	"sync"
	"time"

	"github.com/callfloor/callfloor/routing"
)

// Clock is a fake routing.Clock. Timers fire synchronously inside
// Advance, in deadline order.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers map[int]*fakeTimer
}

type fakeTimer struct {
	c   *Clock
	id  int
	at  time.Time
	f   func()
	seq int
}

// NewClock starts a fake clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t, timers: map[int]*fakeTimer{}} }

// Now implements routing.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements routing.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) routing.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, id: c.seq, at: c.now.Add(d), f: f, seq: c.seq}
	c.timers[t.id] = t
	return t
}

// Stop implements routing.Timer.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.timers[t.id]
	delete(t.c.timers, t.id)
	return ok
}

// Advance moves time forward by d, firing every timer due on the way (and
// timers those timers set, if due) in deadline order.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due []*fakeTimer
		for _, t := range c.timers {
			if !t.at.After(end) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		sort.Slice(due, func(i, j int) bool {
			if !due[i].at.Equal(due[j].at) {
				return due[i].at.Before(due[j].at)
			}
			return due[i].seq < due[j].seq
		})
		t := due[0]
		delete(c.timers, t.id)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending is how many timers wait to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
