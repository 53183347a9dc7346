package esl

import "github.com/callfloor/callfloor/routing"

// causeTable maps FreeSWITCH hangup causes (switch_channel_cause names,
// also the text of a failed originate's "-ERR <CAUSE>") to routing's
// causes. Unlisted causes are CauseFailed.
var causeTable = map[string]routing.Cause{
	"NORMAL_CLEARING":          routing.CauseNormal,      // Q.850 16
	"NORMAL_UNSPECIFIED":       routing.CauseNormal,      // 31
	"USER_BUSY":                routing.CauseBusy,        // 17
	"NO_USER_RESPONSE":         routing.CauseNoAnswer,    // 18
	"NO_ANSWER":                routing.CauseNoAnswer,    // 19
	"ALLOTTED_TIMEOUT":         routing.CauseNoAnswer,    // FreeSWITCH's own ring timeout
	"PROGRESS_TIMEOUT":         routing.CauseNoAnswer,    // likewise, for early media
	"SUBSCRIBER_ABSENT":        routing.CauseUnreachable, // 20: not in the directory
	"USER_NOT_REGISTERED":      routing.CauseUnreachable, // no contact for the user
	"NORMAL_TEMPORARY_FAILURE": routing.CauseUnreachable, // 41: contact did not answer at all (ICMP)
	"DESTINATION_OUT_OF_ORDER": routing.CauseUnreachable, // 27
	"NO_ROUTE_DESTINATION":     routing.CauseUnreachable, // 3
	"UNALLOCATED_NUMBER":       routing.CauseUnreachable, // 1
	"RECOVERY_ON_TIMER_EXPIRE": routing.CauseUnreachable, // 102: SIP transaction timeout
	"CALL_REJECTED":            routing.CauseRejected,    // 21
	"ORIGINATOR_CANCEL":        routing.CauseCancelled,   // 487
	"LOSE_RACE":                routing.CauseCancelled,   // another fork answered
}

func mapCause(fs string) routing.Cause {
	if c, ok := causeTable[fs]; ok {
		return c
	}
	return routing.CauseFailed
}

// hangupCause is the cause uuid_kill sends for a routing cause.
func hangupCause(c routing.Cause) string {
	switch c {
	case routing.CauseBusy:
		return "USER_BUSY"
	case routing.CauseNoAnswer:
		return "NO_ANSWER"
	case routing.CauseRejected:
		return "CALL_REJECTED"
	case routing.CauseCancelled:
		return "ORIGINATOR_CANCEL"
	case routing.CauseUnreachable:
		return "NO_ROUTE_DESTINATION"
	case routing.CauseFailed:
		return "NORMAL_TEMPORARY_FAILURE"
	default:
		return "NORMAL_CLEARING"
	}
}

// causeRank orders causes for a Dial whose forks all failed: the most
// telling one wins (the app rang unanswered while the phone was
// unregistered: that is a no-answer, a RONA).
var causeRank = []routing.Cause{
	routing.CauseNoAnswer, routing.CauseBusy, routing.CauseRejected, routing.CauseCancelled,
	routing.CauseUnreachable, routing.CauseFailed, routing.CauseNormal,
}

func strongest(m map[string]routing.Cause) routing.Cause {
	for _, c := range causeRank {
		for _, got := range m {
			if got == c {
				return c
			}
		}
	}
	return routing.CauseFailed
}
