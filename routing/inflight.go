package routing

import "sync"

// inflight is the offers the dispatcher handed to call loops whose
// reservation has not committed yet. The dispatcher does not wait for an
// offer (its Dial is a round trip to the media server, several ms under
// load), so a later pass may read the floor before an earlier offer's
// commit lands: it skips these calls and agents instead of picking them
// again and losing the reservation race.
type inflight struct {
	mu     sync.Mutex
	calls  map[string][]string // call → agents picked for it
	agents map[string]int      // agent → in-flight offers picking it
}

func newInflight() *inflight {
	return &inflight{calls: map[string][]string{}, agents: map[string]int{}}
}

// reset forgets every offer: a new run starts (offers queued in the last
// one were dropped with its loops).
func (f *inflight) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
	clear(f.agents)
}

// add records an offer handed to callID's loop.
func (f *inflight) add(callID string, agents []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[callID] = agents
	for _, a := range agents {
		f.agents[a]++
	}
}

// done forgets callID's offer: it committed (the store now says so) or
// gave up.
func (f *inflight) done(callID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.calls[callID] {
		if f.agents[a]--; f.agents[a] <= 0 {
			delete(f.agents, a)
		}
	}
	delete(f.calls, callID)
}

// held returns the calls and agents of the offers in flight. A pass
// takes it before it reads the store: an offer done before then has
// committed, so the read sees it; one still held is skipped.
func (f *inflight) held() (calls, agents map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls, agents = make(map[string]bool, len(f.calls)), make(map[string]bool, len(f.agents))
	for c := range f.calls {
		calls[c] = true
	}
	for a := range f.agents {
		agents[a] = true
	}
	return calls, agents
}
