package ari

import "hash/maphash"

// recentWindow is how many messages back a repeat is looked for. On
// Asterisk 22.10.1 a repeat followed its original directly or at most
// eight messages later (ChannelVarset bursts in between).
const recentWindow = 16

// recentEvents recognises an event message that repeats, byte for byte,
// one of the last few read from the same socket. Asterisk sends an event
// once per subscription that covers it: a channel in our application
// whose endpoint we also follow (endpoint:PJSIP, the fallback without a
// device list; subscribe.go) has its
// Dial, ChannelStateChange, ChannelHangupRequest, ChannelDestroyed and
// ChannelDtmfReceived delivered twice, so without this every DTMF digit
// from a SIP device was reported twice. Distinct events never repeat
// byte for byte: each carries its millisecond timestamp (and a digit its
// duration), so dropping repeats loses nothing.
type recentEvents struct {
	seed maphash.Seed
	sums [recentWindow]uint64
	msgs [recentWindow]string
	n    int // filled slots
	next int // slot the next message goes to
}

func newRecentEvents() *recentEvents { return &recentEvents{seed: maphash.MakeSeed()} }

// repeat reports whether msg equals one of the last recentWindow
// messages, and otherwise remembers it.
func (r *recentEvents) repeat(msg []byte) bool {
	sum := maphash.Bytes(r.seed, msg)
	for i := range r.n {
		if r.sums[i] == sum && r.msgs[i] == string(msg) {
			return true
		}
	}
	r.sums[r.next], r.msgs[r.next] = sum, string(msg)
	r.next = (r.next + 1) % recentWindow
	r.n = min(r.n+1, recentWindow)
	return false
}
