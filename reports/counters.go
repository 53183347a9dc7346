package reports

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Counters are today's counters (GET /v1/stats/today) recomputed from the
// rows, to check the live counters against: the rules are the ones
// README.md states for the live ones.
type Counters struct {
	Accepted       int64 `json:"accepted"`
	Missed         int64 `json:"missed"`
	Abandoned      int64 `json:"abandoned"`
	AvgWaitSeconds int64 `json:"avg_wait_seconds"`
}

// Recount computes the counters of [from, to) (one local day) for the
// whole floor, one queue or one group:
//   - accepted: inbound calls first answered in the range;
//   - abandoned: inbound calls that ended in the range never answered;
//   - missed: those abandoned calls whose caller was not reached (an
//     answered call to or from the same number) later in the range;
//   - average wait: from the first ring to the answer, over accepted.
func (d *DB) Recount(ctx context.Context, from, to time.Time, queue, group string) (Counters, error) {
	var c Counters
	x := q{d: d, db: d.sql}
	dim, args := "", []any{}
	switch {
	case queue != "":
		dim, args = " AND queue = ?", []any{queue}
	case group != "":
		dim, args = ` AND scope_groups LIKE ? ESCAPE '\'`, []any{"%," + likeEscape(group) + ",%"}
	}
	f, t := from.UnixMilli(), to.UnixMilli()
	var waitMS, waitN int64
	err := x.row(ctx, `SELECT COUNT(*), COALESCE(SUM(answered_ms - COALESCE(first_ring_ms, answered_ms)), 0) FROM calls
		WHERE direction = 'inbound' AND answered_ms >= ? AND answered_ms < ?`+dim, append([]any{f, t}, args...)...).Scan(&c.Accepted, &waitMS)
	if err != nil {
		return c, fmt.Errorf("reports: recount accepted: %w", err)
	}
	waitN = c.Accepted
	if waitN > 0 {
		c.AvgWaitSeconds = int64(math.Round(float64(waitMS) / float64(waitN) / 1000))
	}
	err = x.row(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN customer_number = '' OR NOT EXISTS (
			SELECT 1 FROM calls r WHERE r.customer_number = calls.customer_number AND r.answered_ms >= calls.ended_ms AND r.answered_ms < ?)
		THEN 1 ELSE 0 END), 0) FROM calls
		WHERE direction = 'inbound' AND answered_ms IS NULL AND ended_ms >= ? AND ended_ms < ?`+dim,
		append([]any{t, f, t}, args...)...).Scan(&c.Abandoned, &c.Missed)
	if err != nil {
		return c, fmt.Errorf("reports: recount missed: %w", err)
	}
	return c, nil
}
