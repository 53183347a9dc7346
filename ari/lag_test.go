package ari

import (
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// lagLog records what the client tells its observer about lag.
type lagLog struct {
	media.NopObserver
	mu      sync.Mutex
	lags    []time.Duration
	refused []string
}

func (l *lagLog) EventLag(d time.Duration) { l.mu.Lock(); l.lags = append(l.lags, d); l.mu.Unlock() }
func (l *lagLog) CallRefused(r string)     { l.mu.Lock(); l.refused = append(l.refused, r); l.mu.Unlock() }

func (l *lagLog) last() (time.Duration, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	if len(l.lags) > 0 {
		d = l.lags[len(l.lags)-1]
	}
	return d, append([]string(nil), l.refused...)
}

// TestRefusesCallsWhileEventsLag: while Asterisk's events arrive more
// than the allowed lag after Asterisk stamped them, a new caller is hung
// up at once (cause 41: the trunk sees 503), never reaches routing, and
// is counted; once events are timely again callers get through. A clock
// that is merely offset from Asterisk's is not lag.
func TestRefusesCallsWhileEventsLag(t *testing.T) {
	obs := &lagLog{}
	f := newFake(t)
	t.Cleanup(f.Close) // after the client has stopped (cleanups run last first)
	f.mu.Lock()
	f.behind = time.Hour // Asterisk's clock an hour behind ours, from the start
	f.mu.Unlock()
	h := startOn(t, f, WithObserver(obs), WithMaxEventLag(time.Second))
	f.expectRequests(connectRequests...)
	h.rec.expect(t, append([]media.Fact{media.LegsPresent{}}, initialPresence()...)...)

	cust := h.f.Inbound("+84901234567", "+842873000001")
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: "+84901234567", Hotline: "+842873000001"})
	if lag, refused := obs.last(); lag > time.Second || len(refused) != 0 {
		t.Fatalf("a steady clock offset taken for lag %v (refused %v)", lag, refused)
	}

	f.mu.Lock()
	f.behind = time.Hour + 5*time.Second // now events come 5 s late
	f.mu.Unlock()
	late := h.f.Inbound("+84901234568", "+842873000001")
	h.f.expectRequests("DELETE /channels/" + late + "?reason_code=41")
	if lag, refused := obs.last(); lag < 4*time.Second || len(refused) != 1 || refused[0] != "event_lag" {
		t.Fatalf("lag %v, refused %v; want ~5 s and one event_lag refusal", lag, refused)
	}

	f.mu.Lock()
	f.behind = time.Hour
	f.mu.Unlock()
	ok := h.f.Inbound("+84901234569", "+842873000001")
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(ok), Caller: "+84901234569", Hotline: "+842873000001"})
}
