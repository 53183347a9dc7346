package pause

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFor(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	if !For(ctx, 20*time.Millisecond) {
		t.Fatal("a live context's wait reported false")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("waited %v, less than asked", took)
	}
	if !For(ctx, 0) || !For(ctx, -time.Second) {
		t.Fatal("no wait on a live context reported false")
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if For(done, 0) {
		t.Fatal("no wait on an ended context reported true")
	}
	start = time.Now()
	if For(done, time.Hour) {
		t.Fatal("a wait on an ended context reported true")
	}

	ending, stop := context.WithCancel(ctx)
	time.AfterFunc(10*time.Millisecond, stop)
	if For(ending, time.Hour) {
		t.Fatal("a wait cut short by its context reported true")
	}
	if took := time.Since(start); took > time.Minute {
		t.Fatalf("an ended context still waited %v", took)
	}
}
