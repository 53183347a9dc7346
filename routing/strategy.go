package routing

import (
	"slices"
	"time"
)

// Candidate is a routable queue member as a strategy sees it.
type Candidate struct {
	ID string
	// Pos is the agent's position in the queue's expanded member list
	// (members in the order configured; a group expands to its agents by
	// id). Ties break on it, and round_robin walks it.
	Pos             int
	LastCallEndedAt time.Time // zero: never had a call (most idle)
	CallsToday      int64     // calls answered today
}

// Select picks who to ring among candidates (routable members, any
// order). lastPos is the position round_robin offered last (-1: none);
// intn draws for random. It returns agent ids in ringing order: every
// candidate for ring_all, exactly one otherwise, none when empty.
//
// Ties: longest_idle → lowest Pos; fewest_calls → longest idle, then
// lowest Pos; round_robin → the first Pos after lastPos, wrapping.
func Select(s Strategy, cands []Candidate, lastPos int, intn func(n int) int) []string {
	if len(cands) == 0 {
		return nil
	}
	switch s {
	case RingAll:
		sorted := slices.Clone(cands)
		slices.SortFunc(sorted, func(a, b Candidate) int { return a.Pos - b.Pos })
		out := make([]string, len(sorted))
		for i, c := range sorted {
			out[i] = c.ID
		}
		return out
	case Random:
		sorted := slices.Clone(cands)
		slices.SortFunc(sorted, func(a, b Candidate) int { return a.Pos - b.Pos })
		return []string{sorted[intn(len(sorted))].ID}
	case RoundRobin:
		best, wrap := -1, -1
		for i, c := range cands {
			if c.Pos > lastPos && (best < 0 || c.Pos < cands[best].Pos) {
				best = i
			}
			if wrap < 0 || c.Pos < cands[wrap].Pos {
				wrap = i
			}
		}
		if best < 0 {
			best = wrap
		}
		return []string{cands[best].ID}
	case FewestCalls:
		return []string{minBy(cands, func(a, b Candidate) int {
			if a.CallsToday != b.CallsToday {
				return cmpInt64(a.CallsToday, b.CallsToday)
			}
			return idleOrder(a, b)
		}).ID}
	default: // LongestIdle, and any unknown strategy stored before validation existed
		return []string{minBy(cands, idleOrder).ID}
	}
}

// idleOrder puts the agent idle longest first (never-called agents lead),
// then the lower member position.
func idleOrder(a, b Candidate) int {
	if !a.LastCallEndedAt.Equal(b.LastCallEndedAt) {
		return a.LastCallEndedAt.Compare(b.LastCallEndedAt)
	}
	return a.Pos - b.Pos
}

func minBy(cands []Candidate, cmp func(a, b Candidate) int) Candidate {
	best := cands[0]
	for _, c := range cands[1:] {
		if cmp(c, best) < 0 {
			best = c
		}
	}
	return best
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
