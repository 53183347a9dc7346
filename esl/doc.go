// Package esl is callfloor's FreeSWITCH media path: a media.Media over
// one inbound Event Socket (ESL) connection.
//
// # How calls reach us: inbound ESL and park
//
// The dialplan answers nothing itself: it sets callfloor_did to the dialled
// hotline and runs park (see freeswitch-conf/). We hold one inbound ESL
// connection (callfloor dials FreeSWITCH's 127.0.0.1:8021) subscribed to
// channel events, and a CHANNEL_PARK of an inbound channel is a new call.
// We chose this over the outbound-socket application (FreeSWITCH dialling
// us per call) because one connection sees every leg — customers, agent
// forks, supervisor eavesdrops — in one ordered stream; a restart of
// callfloor loses no call (parked channels wait, and a resync finds them);
// and FreeSWITCH needs no route to callfloor. Outbound sockets would give
// one connection per call and still need an inbound one for originate and
// registrations.
//
// # What we use of eslgo, and why not the rest
//
// github.com/percipia/eslgo v1.5.1 builds commands (command.Auth,
// command.Event) and names the content types; we use those. Its connection
// is unfit for a contact-center controller: every event listener runs in
// its own goroutine (events lose their order), a -ERR reply is returned as
// success, concurrent commands can take each other's replies, the
// disconnect callback fires only on EOF, OriginateCall drops
// origination_uuid from {}, and it writes "\r\n\r\n" where FreeSWITCH
// sends "\n\n". So this package reads frames itself (frame.go, fuzzed by
// FuzzReadFrame) in one goroutine per connection:
//
//   - events are applied in wire order, so no Event-Sequence sorting is
//     needed and facts are reported in the order they happened;
//   - commands are written and queued under one lock and replies are
//     matched first-in first-out, which is how FreeSWITCH answers them;
//   - every reply is checked for -ERR (a missing channel becomes
//     media.ErrLegGone);
//   - the read deadline is a heartbeat watchdog (HEARTBEAT comes every
//     20 s; WithHeartbeatTimeout, default 60 s), so a half-open TCP
//     connection is detected;
//   - origination_uuid goes in each fork's [] variables.
//
// # Call flow
//
// Answer is uuid_answer; Hold is uuid_broadcast of local_stream://default
// (music) or a ringback tone_stream (pre-answering an unanswered caller).
// Dial is one "bgapi originate {…}[origination_uuid=…]dev1,[…]dev2 &park()":
// comma-separated forks ring at once and the first answer wins; the first
// fork's uuid is the leg id and the answering fork carries it. A failed
// originate may leave no channel at all (USER_NOT_REGISTERED,
// SUBSCRIBER_ABSENT): its BACKGROUND_JOB "-ERR <cause>" ends the leg.
// Connect is uuid_bridge. Every leg gets park_after_bridge=true (agents in
// the originate, customers by the dialplan or by uuid_setvar before the
// first bridge): without it FreeSWITCH hangs up a leg displaced by a new
// uuid_bridge (take over, transfer) and the partner of a leg that hangs
// up. With it those legs park, and routing decides — the same contract as
// the Asterisk adapter. Monitor originates the supervisor with
// &eavesdrop(<agent uuid>); SetMonitorMode injects eavesdrop's mode digit
// (uuid_recv_dtmf 0/2/3); Mute is uuid_audio … start read mute -1 / stop
// (held back until the leg answers: a media bug needs media);
// Hangup is uuid_kill <uuid> <cause>.
//
// # Reconnect
//
// Run reconnects with exponential backoff. FreeSWITCH replays nothing, so
// each connection first resyncs from show channels / calls / registrations
// as json (resync.go) and reports LegsPresent; calls survive our absence.
package esl
