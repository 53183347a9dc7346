package sip

import "github.com/callfloor/callfloor/routing"

// finalFor maps a hang-up cause to the final response for an unanswered
// INVITE.
func finalFor(c routing.Cause) (int, string) {
	switch c {
	case routing.CauseBusy:
		return 486, "Busy Here"
	case routing.CauseRejected:
		return 603, "Decline"
	case routing.CauseCancelled:
		return 487, "Request Terminated"
	case routing.CauseNormal, routing.CauseNoAnswer, routing.CauseUnreachable, routing.CauseFailed, "":
		return 480, "Temporarily Unavailable"
	}
	return 480, "Temporarily Unavailable"
}

// causeOf picks the cause of a failed fork: busy or decline from any
// device beats timeouts, which beat unreachable.
func causeOf(bs []*branch) routing.Cause {
	best := routing.CauseUnreachable
	rank := map[routing.Cause]int{routing.CauseUnreachable: 0, routing.CauseFailed: 1, routing.CauseNoAnswer: 2, routing.CauseCancelled: 3, routing.CauseBusy: 4, routing.CauseRejected: 5}
	for _, b := range bs {
		c := causeForStatus(b.final)
		if rank[c] > rank[best] {
			best = c
		}
	}
	return best
}

// causeForStatus maps a final SIP status to a routing cause.
func causeForStatus(code int) routing.Cause {
	switch code {
	case 486, 600:
		return routing.CauseBusy
	case 603:
		return routing.CauseRejected
	case 480, 408:
		return routing.CauseNoAnswer
	case 487:
		return routing.CauseCancelled
	case 404, 410, 484, 502, 503, 504:
		return routing.CauseUnreachable
	}
	return routing.CauseFailed
}
