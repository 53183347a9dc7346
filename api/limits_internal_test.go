package api

import (
	"strconv"
	"testing"
	"time"
)

// The rate limiter's memory is bounded under a flood of made-up tokens,
// and a token keeps its own budget.
func TestRateLimiterBounded(t *testing.T) {
	rl := newRateLimiter(1, 2)
	now := time.Unix(0, 0)
	rl.now = func() time.Time { return now }
	for i := range maxBuckets + 10 {
		rl.allow("t:" + strconv.Itoa(i))
	}
	if n := len(rl.buckets); n > maxBuckets {
		t.Fatalf("%d buckets, cap %d", n, maxBuckets)
	}
	ok1, _ := rl.allow("t:x")
	ok2, _ := rl.allow("t:x")
	ok3, wait := rl.allow("t:x")
	if !ok1 || !ok2 || ok3 || wait <= 0 {
		t.Fatalf("burst of 2: %v %v %v (wait %v)", ok1, ok2, ok3, wait)
	}
	now = now.Add(time.Second)
	if ok, _ := rl.allow("t:x"); !ok {
		t.Fatal("no token after a second at 1/s")
	}
}
