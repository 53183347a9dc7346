package esl

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// TestRealFreeSWITCH runs against a live FreeSWITCH (freeswitch-conf/)
// when CALLFLOOR_TEST_ESL_ADDR is set, e.g.
//
//	CALLFLOOR_TEST_ESL_ADDR=127.0.0.1:8021 CALLFLOOR_TEST_ESL_PASSWORD=… go test -race -run RealFreeSWITCH ./esl/
//
// It connects, resyncs, hangs up a uuid that does not exist, and dials a
// user the directory lacks, which must end as unreachable through the
// BACKGROUND_JOB alone.
func TestRealFreeSWITCH(t *testing.T) {
	addr := os.Getenv("CALLFLOOR_TEST_ESL_ADDR")
	if addr == "" {
		t.Skip("set CALLFLOOR_TEST_ESL_ADDR (and CALLFLOOR_TEST_ESL_PASSWORD) to run against a real FreeSWITCH")
	}
	facts := newRecorder()
	c, err := New(Config{Addr: addr, Password: os.Getenv("CALLFLOOR_TEST_ESL_PASSWORD")}, facts, WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for !c.Connected() {
		select {
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFact(t, facts, func(f media.Fact) bool { _, ok := f.(media.LegsPresent); return ok })

	if err := c.Hangup(ctx(t), "00000000-0000-0000-0000-000000000000", media.CauseNormal); err != nil {
		t.Fatalf("Hangup of a missing uuid: %v", err)
	}
	leg, err := c.Dial(ctx(t), media.DialRequest{
		CallID: "it-1", Timeout: 5 * time.Second,
		Target: media.Target{AgentID: "callfloor-no-such-user", Distribution: presence.DistApp},
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	waitFact(t, facts, func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == leg && e.Cause == media.CauseUnreachable
	})
}

func waitFact(t *testing.T, r *recorder, match func(media.Fact) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		r.mu.Lock()
		for _, f := range r.facts {
			if match(f) {
				r.mu.Unlock()
				return
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("fact not reported; have:\n%s", dump(r.all()))
		}
	}
}
