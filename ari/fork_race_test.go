package ari

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// An app_sip fork whose app answers before the IP phone's originate has
// reached Asterisk: the cancel of the IP phone finds no channel (404),
// then the originate creates it. The client must still hang it up, or the
// desk phone rings (and, answered, sits in Stasis) with no call.
func TestForkAnsweredBeforeLaterOriginate(t *testing.T) {
	h := startE2E(t)
	h.available("a2")
	var desk string
	h.f.mu.Lock()
	h.f.before = func(req string) {
		if !strings.HasPrefix(req, "POST /channels?") || !strings.Contains(req, "endpoint=PJSIP%2Fa2-desk") {
			return
		}
		desk = channelIDOf(req)
		for _, ch := range h.f.chans {
			if ch.endpoint == "a2" {
				h.f.ringLocked(ch)
				h.f.answerLocked(ch)
			}
		}
		// Let the client's cancel of the desk phone through first.
		cancel := "DELETE /channels/" + desk + "?"
		h.f.mu.Unlock()
		defer h.f.mu.Lock()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(strings.Join(h.peek(), "\n"), cancel) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	h.f.mu.Unlock()
	id, _ := h.arrive(caller)
	h.waitCall(id, routing.StateAnswered, "a2")
	h.waitAgent("a2", presence.SysTalking, id)
	h.eventually("the IP phone's channel hung up", func() error {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		if desk == "" {
			return errors.New("the IP phone was not originated")
		}
		if ch := h.f.chans[desk]; ch != nil {
			return errors.New("the IP phone still rings: " + ch.state)
		}
		return nil
	})
}
