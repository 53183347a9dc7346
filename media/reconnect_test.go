package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestReconnectBacksOffAndRecovers: failed attempts double the wait up
// to Max; a session that got connected starts it again from Min; a
// session that must back off longer waits Max; ErrStopReconnecting ends
// the loop with its error; ctx ending returns nil. The waits are read
// from the gaps between session starts (lower bounds only).
func TestReconnectBacksOffAndRecovers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	type step struct {
		connected bool
		err       error
		minWait   time.Duration // before the next session
	}
	steps := []step{
		{false, errors.New("refused"), 10 * time.Millisecond},
		{false, errors.New("refused"), 20 * time.Millisecond},
		{false, errors.New("refused"), 40 * time.Millisecond},
		{false, errors.New("refused"), 80 * time.Millisecond},
		{false, errors.New("refused"), 80 * time.Millisecond}, // capped
		{true, errors.New("lost"), 10 * time.Millisecond},     // was up: from Min again
		{false, fmt.Errorf("replaced: %w", ErrBackOffLonger), 80 * time.Millisecond},
		{false, fmt.Errorf("bad password: %w", ErrStopReconnecting), 0},
	}
	var starts []time.Time
	err := Reconnect(context.Background(), b, log, "test", func(ctx context.Context) (bool, error) {
		starts = append(starts, time.Now())
		s := steps[len(starts)-1]
		return s.connected, s.err
	})
	if !errors.Is(err, ErrStopReconnecting) || len(starts) != len(steps) {
		t.Fatalf("Reconnect = %v after %d sessions, want ErrStopReconnecting after %d", err, len(starts), len(steps))
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < steps[i-1].minWait {
			t.Errorf("wait before session %d = %v, want at least %v", i+1, gap, steps[i-1].minWait)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = Reconnect(ctx, Backoff{Min: time.Hour, Max: time.Hour}, log, "test", func(context.Context) (bool, error) {
		n++
		cancel() // the process is stopping while the session fails
		return false, errors.New("lost")
	})
	if err != nil || n != 1 {
		t.Fatalf("Reconnect after cancel = %v after %d sessions, want nil after 1", err, n)
	}
}
