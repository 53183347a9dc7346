package media

// What a failed fork or a standard code means is decided here once, so
// Asterisk, FreeSWITCH and the built-in SIP path report the same cause
// for the same outcome (docs/architecture.md, "Media paths").

// forkRank orders the causes of a dial whose every fork failed, most
// telling first: a device that rang unanswered says more about the agent
// than a second device that was busy, declined, or not registered at all
// ("app 480, desk 486" is a no-answer on every path).
var forkRank = [...]Cause{
	CauseNoAnswer, CauseRejected, CauseBusy, CauseUnreachable, CauseFailed, CauseCancelled, CauseNormal,
}

func rankOf(c Cause) int {
	for i, x := range forkRank {
		if x == c {
			return len(forkRank) - i
		}
	}
	return 0
}

// ForkCause is the cause a dial reports when all of its forks failed:
// the most telling of theirs (CauseFailed when there were none).
func ForkCause(causes ...Cause) Cause {
	best := Cause("")
	for _, c := range causes {
		if rankOf(c) > rankOf(best) {
			best = c
		}
	}
	if best == "" {
		return CauseFailed
	}
	return best
}

// MoreTelling reports whether c says more about a failed fork than old,
// for paths that learn fork outcomes one at a time.
func MoreTelling(c, old Cause) bool { return rankOf(c) > rankOf(old) }

// CauseFromQ850 maps an ISDN Q.850 cause code (what Asterisk reports, and
// what FreeSWITCH's cause names stand for) to a Cause.
func CauseFromQ850(code int) Cause {
	switch code {
	case 0, 16, 31:
		return CauseNormal
	case 17:
		return CauseBusy
	case 18, 19:
		return CauseNoAnswer
	case 1, 3, 20, 27, 41, 102:
		return CauseUnreachable
	case 21:
		return CauseRejected
	}
	return CauseFailed
}

// Q850 is the cause code sent when callfloor ends a leg for c.
func Q850(c Cause) int {
	switch c {
	case CauseBusy:
		return 17
	case CauseNoAnswer:
		return 19
	case CauseUnreachable:
		return 20
	case CauseRejected:
		return 21
	case CauseFailed:
		return 41
	}
	return 16 // normal, cancelled, anything else
}

// CauseFromSIP maps the final status of an INVITE that was not answered
// (RFC 3261 section 21) to a Cause.
func CauseFromSIP(status int) Cause {
	switch status {
	case 486, 600:
		return CauseBusy
	case 603:
		return CauseRejected
	case 480, 408:
		return CauseNoAnswer
	case 487:
		return CauseCancelled
	case 404, 410, 484, 502, 503, 504:
		return CauseUnreachable
	}
	return CauseFailed
}

// SIPStatus is the final response callfloor sends on an unanswered INVITE
// it ends for c. CauseFailed (a caller with no queue, or refused while
// routing runs late) is 503, as Asterisk and FreeSWITCH answer for the
// Q.850 cause 41 the other paths send (RFC 3398, 8.2.A): a trunk may try
// another route, where 480 would say the callee is away.
func SIPStatus(c Cause) (int, string) {
	switch c {
	case CauseBusy:
		return 486, "Busy Here"
	case CauseRejected:
		return 603, "Decline"
	case CauseCancelled:
		return 487, "Request Terminated"
	case CauseFailed:
		return 503, "Service Unavailable"
	}
	return 480, "Temporarily Unavailable"
}
