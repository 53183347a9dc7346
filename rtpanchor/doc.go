// Package rtpanchor anchors the media of the built-in SIP path: every
// leg's RTP goes through callfloor, so the SIP path can play music and
// ringback, and let supervisors listen, whisper, barge and take over with
// no PBX behind it (README.md, "Media on the built-in SIP path").
//
// An Anchor binds an RTP/RTCP port pair per Leg from a configured range on
// the SIP listener's address. RTP is symmetric with latching: the anchor
// sends to the address a leg's packets come from (phones behind NAT),
// falling back to the SDP address until the first packet. It speaks PCMU
// and PCMA and transcodes between them; RFC 4733 telephone-events are
// relayed into each listener's stream and reported as DTMF. RTCP is
// answered (the anchor re-originates every stream, so it sends its own
// sender reports), not passed through.
//
// A Session is one conversation. Each 20 ms tick of the anchor's clock
// takes one frame from each leg's jitter buffer and sends every leg the
// sum of the legs it hears (Relay, Monitor, Mute, Replace), or what is
// played to it (PlayMusic, PlayRingback). One clock goroutine hands the
// sessions to GOMAXPROCS mixing workers; each socket has one reader
// goroutine; nothing runs per packet and per-leg buffers are allocated
// once with the leg.
//
// Bounds: NewSession fails with ErrAtCapacity beyond Config.MaxCalls
// (counted through the Observer), NewLeg with ErrNoPorts when the range
// is used up, and a leg that should send but has been silent for
// Config.Inactivity is reported to the Handler as gone.
package rtpanchor
