package ari

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// lagCount counts the events handled (each reports its lag).
type lagCount struct {
	media.NopObserver
	mu sync.Mutex
	n  int
}

func (l *lagCount) EventLag(time.Duration) { l.mu.Lock(); l.n++; l.mu.Unlock() }
func (l *lagCount) handled() int           { l.mu.Lock(); defer l.mu.Unlock(); return l.n }

// The socket's goroutine handles an event itself only when nothing is
// queued ahead of it and no handling is under way; otherwise the event
// waits its turn in the queue, so a resync or refresh is never overtaken.
func TestEventsSkipTheQueueOnlyWhenNothingWaits(t *testing.T) {
	obs := &lagCount{}
	c, err := New(Config{URL: "http://127.0.0.1:1/ari"}, &recorder{}, WithLogger(testLogger(t)), WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ev := queued{ev: &ari.DeviceStateChanged{EventData: ari.EventData{Type: "DeviceStateChanged"},
		DeviceState: ari.DeviceStateData{Name: "PJSIP/a1", State: "NOT_INUSE"}}, at: now, emitted: now}
	if !c.handleNow(ev) || obs.handled() != 1 {
		t.Fatalf("idle client: not handled on the socket (%d handled)", obs.handled())
	}

	c.handling.Lock() // the dispatcher busy with an item
	if c.handleNow(ev) {
		t.Fatal("handled on the socket while the dispatcher was handling")
	}
	c.handling.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !c.enqueue(ctx, queued{refresh: true}) {
		t.Fatal("enqueue")
	}
	if c.handleNow(ev) || obs.handled() != 1 {
		t.Fatal("an event overtook a queued refresh")
	}
	if !c.enqueue(ctx, ev) { // what session does when handleNow says no
		t.Fatal("enqueue")
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.dispatch(ctx) })
	deadline := time.Now().Add(10 * time.Second)
	for c.pending.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not drain the queue")
		}
		time.Sleep(time.Millisecond)
	}
	if obs.handled() != 2 {
		t.Fatalf("%d events handled after the queue drained, want 2", obs.handled())
	}
	if !c.handleNow(ev) || obs.handled() != 3 {
		t.Fatal("with the queue drained, the next event was not handled on the socket")
	}
	cancel()
	wg.Wait()
}
