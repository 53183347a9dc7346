package store

import (
	"errors"
	"strconv"
	"testing"

	"github.com/callfloor/callfloor/state"
)

// FuzzLogPositions: both position parsers accept exactly the canonical
// form of some ordinal (leading zeros aside) and nothing panics; every
// refusal is ErrBadPosition.
func FuzzLogPositions(f *testing.F) {
	for _, s := range []string{"", "0", "1", "42", "18446744073709551615", "18446744073709551616",
		"1-0", "0-0", "7-1", "-0", "1-", "abc", "+1", " 1", "1-0-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pos string) {
		n, err := parseMemoryPosition(pos)
		if err != nil {
			if !errors.Is(err, state.ErrBadPosition) {
				t.Fatalf("memory %q: %v is not ErrBadPosition", pos, err)
			}
		} else if m, _ := parseMemoryPosition(strconv.FormatUint(n, 10)); m != n {
			t.Fatalf("memory %q -> %d does not round-trip", pos, n)
		}
		n, err = parseRedisPosition(pos)
		if err != nil {
			if !errors.Is(err, state.ErrBadPosition) {
				t.Fatalf("redis %q: %v is not ErrBadPosition", pos, err)
			}
		} else if m, err := parseRedisPosition(redisPosition(n)); err != nil || m != n {
			t.Fatalf("redis %q -> %d does not round-trip", pos, n)
		}
	})
}
