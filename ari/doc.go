// Package ari is callfloor's media path over Asterisk's REST Interface.
//
// A Client is a Stasis application (default name "callfloor"): the dialplan
// hands inbound trunk calls to it, routing sends it commands through the
// routing.Media interface, and it reports what Asterisk did as routing facts
// (CallArrived, LegRinging, LegAnswered, LegEnded, DTMF, DeviceState,
// LegsPresent).
//
// It uses the types and event decoder of github.com/CyCoreSystems/ari/v6 but
// neither its WebSocket bus nor its REST client: the bus panics on event types
// the library does not know (Asterisk 22 sends several) and drops events when
// a subscriber lags, and the REST client takes no context, sends JSON bodies
// and discards error bodies, which hides the "Allocation failed" that tells an
// unregistered device apart. So this package reads /ari/events with its own
// loop into one ordered dispatcher, and speaks REST with query parameters
// exactly as Asterisk documents them.
//
// Call mapping (see routing/media.go for the contract):
//   - hold music: a holding bridge "hold-<leg>" with music on hold;
//     ringback: POST /channels/{id}/ring;
//   - dial: POST /channels originate with app=<app>, so an answered leg
//     enters Stasis (StasisStart arrives only on answer); app_sip forks to
//     the agent's device and personal number, first answer wins;
//   - connect: a mixing bridge "call-<leg>" shared by the call;
//   - listen / whisper: a snoop channel on the agent (spy=both, whisper
//     none / out) in a mixing bridge "spy-<agent leg>" with the supervisor;
//     barge: the supervisor in the call bridge;
//   - mute: POST/DELETE /channels/{id}/mute?direction=in.
package ari
