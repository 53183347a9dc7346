package ari

import (
	"context"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// The periodic refresh reports every registered device again, and any
// change whose event was missed.
func TestPresenceRefresh(t *testing.T) {
	f := newFake(t)
	rec := &recorder{}
	c, err := New(Config{URL: f.URL(), User: "callfloor", Password: "secret"}, rec, WithLogger(testLogger(t)),
		WithBackoff(5*time.Millisecond, 40*time.Millisecond), WithPresenceRefresh(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; f.Close() })
	f.expectRequests(connectRequests...)
	rec.expect(t, append([]media.Fact{media.LegsPresent{}}, initialPresence()...)...)

	f.mu.Lock() // changes Asterisk did not tell us about
	delete(f.contacts, "a2")
	f.contacts["a3"] = []string{fakeContactURI("a3")}
	f.mu.Unlock()
	if !c.enqueue(ctx, queued{refresh: true}) {
		t.Fatal("enqueue")
	}
	f.expectRequests("GET /endpoints")
	dev := func(id string, on bool) media.Fact {
		return media.DeviceState{AgentID: id, Device: "PJSIP/" + id, Registered: on}
	}
	rec.expect(t, dev("sup-sales", true), dev("sup-sales-desk", true), dev("a1", true), dev("a1-desk", true),
		dev("a2", false), dev("a2-desk", true), dev("a3", true))
}

func TestPresenceRefreshConfig(t *testing.T) {
	if _, err := New(Config{URL: "http://127.0.0.1:1/ari"}, &recorder{}, WithPresenceRefresh(0)); err == nil {
		t.Fatal("zero refresh accepted")
	}
}
