package esl

import "github.com/callfloor/callfloor/media"

// causeTable maps FreeSWITCH hangup causes (switch_channel_cause names,
// also the text of a failed originate's "-ERR <CAUSE>") to routing's
// causes. Unlisted causes are CauseFailed.
var causeTable = map[string]media.Cause{
	"NORMAL_CLEARING":          media.CauseNormal,      // Q.850 16
	"NORMAL_UNSPECIFIED":       media.CauseNormal,      // 31
	"USER_BUSY":                media.CauseBusy,        // 17
	"NO_USER_RESPONSE":         media.CauseNoAnswer,    // 18
	"NO_ANSWER":                media.CauseNoAnswer,    // 19
	"ALLOTTED_TIMEOUT":         media.CauseNoAnswer,    // FreeSWITCH's own ring timeout
	"PROGRESS_TIMEOUT":         media.CauseNoAnswer,    // likewise, for early media
	"SUBSCRIBER_ABSENT":        media.CauseUnreachable, // 20: not in the directory
	"USER_NOT_REGISTERED":      media.CauseUnreachable, // no contact for the user
	"NORMAL_TEMPORARY_FAILURE": media.CauseUnreachable, // 41: contact did not answer at all (ICMP)
	"DESTINATION_OUT_OF_ORDER": media.CauseUnreachable, // 27
	"NO_ROUTE_DESTINATION":     media.CauseUnreachable, // 3
	"UNALLOCATED_NUMBER":       media.CauseUnreachable, // 1
	"RECOVERY_ON_TIMER_EXPIRE": media.CauseUnreachable, // 102: SIP transaction timeout
	"CALL_REJECTED":            media.CauseRejected,    // 21
	"ORIGINATOR_CANCEL":        media.CauseCancelled,   // 487
	"LOSE_RACE":                media.CauseCancelled,   // another fork answered
}

func mapCause(fs string) media.Cause {
	if c, ok := causeTable[fs]; ok {
		return c
	}
	return media.CauseFailed
}

// hangupCause is the cause uuid_kill sends for a routing cause.
func hangupCause(c media.Cause) string {
	switch c {
	case media.CauseBusy:
		return "USER_BUSY"
	case media.CauseNoAnswer:
		return "NO_ANSWER"
	case media.CauseRejected:
		return "CALL_REJECTED"
	case media.CauseCancelled:
		return "ORIGINATOR_CANCEL"
	case media.CauseUnreachable:
		return "NO_ROUTE_DESTINATION"
	case media.CauseFailed:
		return "NORMAL_TEMPORARY_FAILURE"
	default:
		return "NORMAL_CLEARING"
	}
}

// strongest is the cause of a dial whose forks all failed (media.ForkCause).
func strongest(m map[string]media.Cause) media.Cause {
	causes := make([]media.Cause, 0, len(m))
	for _, c := range m {
		causes = append(causes, c)
	}
	return media.ForkCause(causes...)
}
