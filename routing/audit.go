package routing

import (
	"context"
	"time"

	"github.com/callfloor/callfloor/media"
)

// DefaultLegAudit is how often routing asks the media path which of its
// calls' legs still exist. A leg found gone in two audits in a row ends
// (its end was lost: a BYE that never came, a socket cut while the far end
// hung up), so a call whose legs are gone ends within 2 audits — 40 s by
// default, inside the floor's 60 s rule (README.md, Floor rules). Two
// audits, not one, because an end the path is about to report (an event
// still queued) must win with its real cause.
const DefaultLegAudit = 20 * time.Second

// WithLegAudit changes DefaultLegAudit (0 or less turns the audit off).
func WithLegAudit(d time.Duration) Option { return func(e *Engine) { e.legAudit = d } }

// armAudit schedules the next leg audit on the dispatcher loop.
func (e *Engine) armAudit() {
	if e.legAudit <= 0 {
		return
	}
	e.timers.set("leg-audit", e.clock.AfterFunc(e.legAudit, func() {
		if e.isStopped() {
			return
		}
		e.push(e.dispatch, func(ctx context.Context) {
			e.auditLegs(ctx)
			e.armAudit()
		})
	}))
}

// auditLegs asks the media path about every leg of every live call and
// ends, as the path would have, those gone in this audit and the last.
// It runs on the dispatcher loop, which owns e.suspects.
func (e *Engine) auditLegs(ctx context.Context) {
	calls, err := e.allCalls(ctx)
	if err != nil {
		e.log.Warn("leg audit: list calls", "err", err)
		return
	}
	var legs []media.LegID
	for _, c := range calls {
		for _, l := range []media.LegID{c.CustomerLeg, c.AgentLeg} {
			if l != "" {
				legs = append(legs, l)
			}
		}
		for _, o := range c.Offers {
			legs = append(legs, o.Leg)
		}
		if c.Monitor != nil && c.Monitor.Leg != "" {
			legs = append(legs, c.Monitor.Leg)
		}
	}
	if len(legs) == 0 {
		e.suspects = nil
		return
	}
	gone, err := e.mediaPath().Gone(ctx, legs)
	if err != nil {
		e.log.Debug("leg audit: media path did not answer", "err", err)
		return // keep the suspects: no news is not "present"
	}
	next := make(map[media.LegID]bool, len(gone))
	for _, l := range gone {
		if !e.suspects[l] {
			next[l] = true
			continue
		}
		e.log.Info("leg gone without news from the media path; ending it", "leg", l)
		e.Report(media.LegEnded{FactBase: media.FactBase{At: e.clock.Now()}, Leg: l, Cause: media.CauseNormal})
	}
	e.suspects = next
}
