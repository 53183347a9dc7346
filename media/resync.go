package media

import "time"

// Snapshot is what a media path found when it (re)connected: the legs it
// still has, and what happened to the legs it tracked while it was away.
type Snapshot struct {
	At time.Time
	// Legs lists every live leg (LegsPresent).
	Legs []LegSnapshot
	// Ended are the LegEnded facts of tracked legs that vanished.
	Ended []Fact
	// Answered are the LegAnswered facts of tracked dials answered while
	// the path was away.
	Answered []Fact
	// Devices are device registrations as the media server lists them.
	Devices []Fact
}

// Facts is the one order in which every path reports a snapshot: the
// list of live legs first, so that routing tells legs it does not hold
// (new callers, orphans) from its own before anything else can change its
// calls — a call ended by a vanished leg unbinds its other legs, and a
// caller listed after that would come back as a new call; then the ends
// of vanished legs (routing already ended them from the list: these only
// carry the cause); then answers, which now find their calls settled;
// last, device presence, which changes no call.
func (s Snapshot) Facts() []Fact {
	out := make([]Fact, 0, 1+len(s.Ended)+len(s.Answered)+len(s.Devices))
	out = append(out, LegsPresent{FactBase: FactBase{At: s.At}, Legs: s.Legs})
	out = append(out, s.Ended...)
	out = append(out, s.Answered...)
	return append(out, s.Devices...)
}
