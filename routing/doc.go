// Package routing is the brain of the floor: queues, live calls,
// distribution strategies, RONA, wrap-up, outbound click-to-call,
// supervisor actions (listen, whisper, barge, take over, transfer, hang
// up) and today's counters.
//
// It drives a media path through the media.Media contract and reacts
// to the Facts the media path reports. It imports no adapter, HTTP or
// Redis package: the store (state.Store) is the truth for queues, calls,
// monitors and counters, and agents change through the presence package's
// pure state machine, so an agent change, its history rows and its
// "agent" event commit in the same state.Tx as the call change (and its
// "call" / "call_ended" / "monitor" event) that caused it.
//
// # Ordering
//
// Every change to a call runs on one ordered loop per shard of calls
// (hash of the call id); facts find their call through a leg index, and a
// fact that races the Dial that created its leg is parked until the leg
// is known. A dispatcher loop matches waiting calls to routable agents,
// oldest call first across all queues, and hands each offer to the call's
// loop. Agents are shared between shards; their records are
// compare-and-set, so two shards never reserve the same agent. The
// dispatcher runs on Kick (after every call change, after API changes,
// and on every agent event with WithAgentEvents) and on a periodic tick.
//
// # Distribution rules
//
//   - Routable: manual status available, system status available, no
//     call (presence.Agent.Routable). Offline alone does not forbid it.
//   - A routed offer that does not reach the agent → RONA: no answer
//     within the queue's ring timeout (our timer, or the path's LegEnded
//     no_answer), and equally busy, rejected, unreachable, failed (a
//     device not registered, network or phone trouble) or a Dial refused
//     at once with media.ErrUnreachable. The agent goes to rona and stays
//     out of routing until a status is chosen; the call goes back to its
//     queue at its original position and the next agent is tried at once.
//     Only the caller hanging up (the customer leg ending) RONAs nobody.
//   - A Dial that fails because the media path is down or cannot do it is
//     not the agent's doing: the agent is free again, skipped for this
//     call for a few seconds.
//   - ring_all rings every routable member; the first answer wins and the
//     other legs are cancelled. app_sip forking is the media path's job
//     (one Dial, one leg, first device to answer).
//   - After talking, the agent wraps up (after_call_work) for the queue's
//     wrapup_seconds, then is available; presence.Service.EndWrapUp ends it
//     early.
//
// # Media refusals
//
// A signalling-only path refuses Answer with ErrNotSupported: the caller
// then waits with ringback instead of music. Monitor refused with
// ErrNotSupported (no mixer) or any command failing with
// ErrMediaUnavailable is returned wrapped, so the API answers 501 / 503.
// DTMF facts are logged and otherwise ignored (no IVR runs here).
//
// # Counters
//
// Today's counters are store counter hashes keyed by the local date of
// the account's time zone (presence.Service.Location), so they survive
// restarts and are shared by replicas. The missed count follows the UIS
// rule: a caller's misses today stop counting once that caller is reached
// (an inbound call answered, or an outbound call to them answered); these
// changes run on a per-caller loop so they never double count.
//
// # Replicas
//
// Calls are owned by the replica whose media connection reported them.
// Running dispatchers on several replicas is safe for agents (CAS) but an
// offer Dials through the local media path, so a deployment with several
// replicas runs the engine's dispatcher where the media lease is held.
package routing
