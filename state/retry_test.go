package state

import (
	"context"
	"errors"
	"testing"
)

// RetryWait returns once its random wait is over, and at once with ctx's
// error when ctx has ended (a retry never outlives its request).
func TestRetryWait(t *testing.T) {
	for attempt := range 20 {
		if err := RetryWait(context.Background(), attempt); err != nil {
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := RetryWait(cancelled, 30); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
