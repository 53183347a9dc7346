// Package sip is callfloor's built-in SIP path: a registrar for agents'
// devices and a signalling-only back-to-back user agent (B2BUA) that
// implements media.Media without a media server.
//
// Calls: an INVITE from a trunk (allowed source address, or digest
// credentials for the trunk) becomes a customer leg and a
// media.CallArrived fact. Routing then dials agents: Dial sends an INVITE
// carrying the caller's SDP offer to every registered contact of the agent
// in parallel (first 2xx wins, the other branches are CANCELled) or, for
// the phone distribution mode, to the outbound trunk. Connect answers the
// caller with the agent's SDP, so media flows end to end between trunk and
// phone and callfloor never touches RTP. Because there is no mixer,
// Answer, Hold(music), Monitor, SetMonitorMode and Mute return errors
// wrapping media.ErrNotSupported.
//
// Media anchor (WithMediaAnchor, rtpanchor): every leg's SDP names an
// anchored RTP port instead of the other party's, and one
// rtpanchor.Session per call carries its audio. Answer sends 200 OK
// with the anchored SDP; Hold on a caller not answered sends 183 Session
// Progress with it first (early media: the caller hears ringback or music
// without being answered); Connect answers the caller if need be and
// relays the two legs in the mixer (a transfer is a change of routes, no
// re-INVITE), Monitor rings the supervisor into
// the call's session and routes them as listen, whisper or barge,
// SetMonitorMode and Mute (pause, for a supervisor) re-route, and an
// agent's own outbound leg hears ringback until its customer is bridged.
// Re-INVITEs from phones (hold, codec change) are answered by the anchor
// for that leg alone. A leg without RTP for the anchor's inactivity time
// is hung up (LegEnded, cause failed); INVITEs beyond the anchor's call
// cap get 503, and an offer without PCMU or PCMA gets 488.
//
// Session timers (RFC 4028, sessiontimer.go): every answered dialog,
// inbound or dialled, is refreshed or watched; a peer that stops
// answering refreshes is hung up with cause failed, so a vanished phone
// or trunk never leaves a call up in signalling-only mode either.
//
// Surviving the process (dialogs.go, WithDialogStore): in signalling
// mode every answered dialog is stored and deleted when its leg ends; a
// Server that starts on the same address rebuilds those legs answered
// and connected, resumes their session timers and reports them as
// LegsPresent, so a new owner keeps the calls of a dead one. HandOver
// (a lost lease term) stops without ending calls.
//
// Devices: media.Ring says which SIP users a distribution mode rings
// (the app device, the IP phone, both); every contact registered under
// each of them is one branch of the leg's fork.
//
// Facts are reported while the reporting leg's lock is held, so facts of
// one leg arrive in order; media.Facts.Report must therefore only queue
// and never call back into the Server synchronously.
//
// Registrar: REGISTER over UDP and TCP on one address, RFC 3261 section 10
// bindings with server-side digest authentication (RFC 2617 / RFC 8760
// MD5 with qop=auth), per-client nonces with expiry, and a
// media.DeviceState fact for every change of an agent's bindings. After
// too many wrong answers from one source for one user (WithMaxAuthFailures)
// that source gets 403 for that user until the count is forgotten (ten
// minutes without failures).
package sip
