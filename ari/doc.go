// Package ari is callfloor's media path over Asterisk's REST Interface.
//
// A Client is a Stasis application (default name "callfloor"): the dialplan
// hands inbound trunk calls to it, routing sends it commands through the
// media.Media interface, and it reports what Asterisk did as routing facts
// (CallArrived, LegRinging, LegAnswered, LegEnded, DTMF, DeviceState,
// LegsPresent). Run keeps the connection: it reads /ari/events, subscribes
// to the agents' devices' states (Config.Devices, following the list;
// subscribe.go), and after every (re)connect resynchronises from
// GET /channels and /bridges, because Asterisk does not replay events
// missed while no socket was connected.
//
// It uses the types and event decoder of github.com/CyCoreSystems/ari/v6 but
// neither its WebSocket bus nor its REST client: the bus panics on event types
// the library does not know (Asterisk 22 sends several) and drops events when
// a subscriber lags, and the REST client takes no context, sends JSON bodies
// and discards error bodies, which hides the "Allocation failed" that tells an
// unregistered device apart. So this package reads /ari/events with its own
// loop into one ordered dispatcher (dropping the byte-identical repeats
// Asterisk sends when two subscriptions cover an event, see dedup.go), and
// speaks REST with query parameters as Asterisk documents them (and as
// testdata/*.jsonl recorded them).
//
// Call mapping (see routing/media.go for the contract):
//   - hold music: POST /channels/{id}/moh on the caller's channel,
//     DELETE .../moh before it is connected (Asterisk keeps a channel's
//     music in a bridge); ringback: POST /channels/{id}/ring;
//   - dial: POST /channels originate with app=<app> and a channelId we
//     choose, so an answered leg enters Stasis (StasisStart arrives only on
//     answer); app_sip forks to the agent's device and personal number,
//     first answer wins, the rest are hung up, routing sees one leg;
//   - hang-up causes: Q.850 from ChannelDestroyed (19 no answer, 17 busy,
//     16 normal); a caller's leg ends at StasisEnd, which is all Asterisk
//     sends for it; 500 "Allocation failed" on originate is ErrUnreachable;
//   - connect: a mixing bridge "call-<leg>" shared by the call; connecting
//     the customer to a new leg detaches the old one;
//   - listen / whisper: a snoop channel on the agent (spy=both, whisper
//     none / out) in a mixing bridge "spy-<agent leg>" with the supervisor;
//     barge: the supervisor in the call bridge;
//   - mute: POST/DELETE /channels/{id}/mute?direction=in.
//
// Bridge names carry their role so a restarted controller recognises its
// own bridges and removes those left empty (and takes a caller an earlier
// version held in a holding bridge "hold-<leg>" out of it on connect).
//
// A resync also makes up for events lost while no socket was connected:
// a dialled leg found Up in our application is reported answered; a
// hang-up that failed while Asterisk was unreachable is retried (and the
// leg, which routing let go, is not listed as present); after a restart,
// devices still ringing are recognised by the channel ids we chose
// ("cf-…") and running monitors are rejoined to their snoop and spy
// bridge, the mode read from the snoop's arguments.
package ari
