package sip

import "github.com/callfloor/callfloor/media"

// finalFor maps a hang-up cause to the final response for an unanswered
// INVITE.
func finalFor(c media.Cause) (int, string) {
	switch c {
	case media.CauseBusy:
		return 486, "Busy Here"
	case media.CauseRejected:
		return 603, "Decline"
	case media.CauseCancelled:
		return 487, "Request Terminated"
	case media.CauseNormal, media.CauseNoAnswer, media.CauseUnreachable, media.CauseFailed, "":
		return 480, "Temporarily Unavailable"
	}
	return 480, "Temporarily Unavailable"
}

// causeOf picks the cause of a failed fork: busy or decline from any
// device beats timeouts, which beat unreachable.
func causeOf(bs []*branch) media.Cause {
	best := media.CauseUnreachable
	rank := map[media.Cause]int{media.CauseUnreachable: 0, media.CauseFailed: 1, media.CauseNoAnswer: 2, media.CauseCancelled: 3, media.CauseBusy: 4, media.CauseRejected: 5}
	for _, b := range bs {
		c := causeForStatus(b.final)
		if rank[c] > rank[best] {
			best = c
		}
	}
	return best
}

// causeForStatus maps a final SIP status to a routing cause.
func causeForStatus(code int) media.Cause {
	switch code {
	case 486, 600:
		return media.CauseBusy
	case 603:
		return media.CauseRejected
	case 480, 408:
		return media.CauseNoAnswer
	case 487:
		return media.CauseCancelled
	case 404, 410, 484, 502, 503, 504:
		return media.CauseUnreachable
	}
	return media.CauseFailed
}
