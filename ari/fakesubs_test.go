package ari

import (
	"encoding/json"
	"slices"
	"strings"
)

// Subscriptions in the fake, as Asterisk 22.10.1 keeps them (res_stasis;
// testdata/README.md, "Checked later against a live Asterisk"). They
// outlive the application's socket: an endpoint subscription keeps the
// deactivated application, and the next socket reactivates it with them
// (seen on the real Asterisk). Asterisk counts interest per source: a
// source subscribed n times takes n DELETEs to go. An
// endpoint subscription ("endpoint:PJSIP" for the technology,
// "endpoint:PJSIP/<resource>" for one endpoint) brings the endpoint's own
// events and forwards every event of every channel on it, so a channel
// event of a channel that is in the application as well arrives twice,
// byte for byte; an endpoint's channel coming or going changes its
// snapshot (EndpointStateChange).

// subscription is POST/DELETE /applications/{app}/subscription as
// Asterisk's Applications REST API documents it (eventSource, a
// comma-separated list; 200 with the application, 400 bad scheme, 422
// event source missing or not subscribed) and res_stasis applies it: one
// source at a time, the first refused ends the request and those before
// it stay done; 128 values or more are refused.
func (f *fakeARI) subscription(add bool, param string) (int, any) {
	if param == "" {
		return 400, map[string]string{"message": "Missing parameter eventSource"}
	}
	sources := strings.Split(param, ",")
	if len(sources) >= 128 {
		return 400, map[string]string{"message": "Too many values for event_source"}
	}
	for _, s := range sources {
		scheme, id, _ := strings.Cut(s, ":")
		switch scheme {
		case "channel", "bridge", "endpoint", "deviceState":
		default:
			return 400, map[string]string{"message": "Invalid event source URI scheme"}
		}
		switch {
		case !add && f.subs[s] == 0:
			return 422, map[string]string{"message": "Event source was not subscribed to"}
		case !add:
			if f.subs[s]--; f.subs[s] == 0 {
				delete(f.subs, s)
			}
		case scheme == "endpoint" && !f.hasEndpoint(id):
			return 422, map[string]string{"message": "Event source does not exist"}
		default:
			f.subs[s]++
		}
	}
	return 200, f.applicationJSON()
}

// hasEndpoint: "PJSIP" (the technology) or "PJSIP/<one of f.order>".
func (f *fakeARI) hasEndpoint(id string) bool {
	tech, res, one := strings.Cut(id, "/")
	return tech == "PJSIP" && (!one || slices.Contains(f.order, res))
}

// applicationJSON is the Application as the recorded subscribe answered
// it (testdata/connect.jsonl).
func (f *fakeARI) applicationJSON() map[string]any {
	app := map[string]any{"name": f.app, "channel_ids": []string{}, "bridge_ids": []string{},
		"endpoint_ids": []string{}, "device_names": []string{}, "events_allowed": []any{}, "events_disallowed": []any{}}
	for _, s := range slices.Sorted(func(yield func(string) bool) {
		for s := range f.subs {
			if !yield(s) {
				return
			}
		}
	}) {
		scheme, id, _ := strings.Cut(s, ":")
		key := map[string]string{"channel": "channel_ids", "bridge": "bridge_ids", "endpoint": "endpoint_ids", "deviceState": "device_names"}[scheme]
		app[key] = append(app[key].([]string), id)
	}
	return app
}

// endpointSubscribed says whether the application gets the events of
// endpoint PJSIP/<res>.
func (f *fakeARI) endpointSubscribed(res string) bool {
	return f.subs["endpoint:PJSIP"] > 0 || f.subs["endpoint:PJSIP/"+res] > 0
}

// chanEndpoint is the endpoint resource a channel is on: the trunk for a
// call it delivered or a number dialled through it ("…@trunk"), else the
// device dialled (its AOR).
func chanEndpoint(ch *fakeChan) string {
	if ch.snoop {
		return ""
	}
	if !ch.originated {
		return "trunk"
	}
	aor, _, _ := strings.Cut(ch.endpoint, "/")
	if _, trunk, ok := strings.Cut(aor, "@"); ok {
		return trunk
	}
	return aor
}

// endpointChangedLocked: a channel appeared on or left ch's endpoint.
func (f *fakeARI) endpointChangedLocked(ch *fakeChan) {
	res := chanEndpoint(ch)
	if res != "" && f.endpointSubscribed(res) {
		f.sendLocked(f.event("EndpointStateChange", kv{"endpoint", f.endpointJSON(res)}))
	}
	f.deviceChangedLocked(res)
}

// channelTopicEvents are published on a channel's own topic, which an
// endpoint subscription forwards too (StasisStart/End and bridge events
// are not).
var channelTopicEvents = map[string]bool{
	"ChannelCreated": true, "ChannelDialplan": true, "ChannelCallerId": true, "Dial": true,
	"ChannelStateChange": true, "ChannelHangupRequest": true, "ChannelDestroyed": true,
	"ChannelDtmfReceived": true, "ChannelVarset": true,
}

// repeatedLocked says whether msg reaches the application a second time
// through an endpoint subscription.
func (f *fakeARI) repeatedLocked(msg []byte) bool {
	var ev struct {
		Type    string `json:"type"`
		Channel *struct {
			ID string `json:"id"`
		} `json:"channel"`
		Peer *struct {
			ID string `json:"id"`
		} `json:"peer"`
	}
	if json.Unmarshal(msg, &ev) != nil || !channelTopicEvents[ev.Type] {
		return false
	}
	id := ""
	switch {
	case ev.Peer != nil:
		id = ev.Peer.ID
	case ev.Channel != nil:
		id = ev.Channel.ID
	}
	res, ok := f.chanEP[id]
	return ok && res != "" && f.endpointSubscribed(res)
}

// playingMOH says whether music on hold plays on a channel.
func (f *fakeARI) playingMOH(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.chans[id]
	return ch != nil && ch.moh
}

// Device states, as chan_pjsip computes them (chan_pjsip_devicestate):
// UNAVAILABLE while the endpoint has no contact, else the aggregate of its
// channels' states — a Down channel counts as NOT_INUSE, Ringing as
// RINGING, Up as INUSE. An application subscribed to
// "deviceState:PJSIP/<res>" gets DeviceStateChanged when it changes
// (res_stasis_device_state.c); nothing else of the device's channels.
func (f *fakeARI) deviceStateOf(res string) string {
	if !f.registered(res) {
		return "UNAVAILABLE"
	}
	state := "NOT_INUSE"
	for _, ch := range f.chans {
		if ch.snoop || chanEndpoint(ch) != res {
			continue
		}
		switch ch.state {
		case "Up":
			return "INUSE"
		case "Ringing":
			state = "RINGING"
		}
	}
	return state
}

// deviceChangedLocked reports device PJSIP/<res>'s state if it changed.
func (f *fakeARI) deviceChangedLocked(res string) {
	if res == "" || res == "trunk" {
		return
	}
	state := f.deviceStateOf(res)
	last, ok := f.devState[res]
	if !ok {
		last = "UNAVAILABLE"
	}
	if state == last {
		return
	}
	f.devState[res] = state
	if f.subs["deviceState:PJSIP/"+res] > 0 {
		f.sendLocked(f.event("DeviceStateChanged",
			kv{"device_state", map[string]string{"name": "PJSIP/" + res, "state": state}}))
	}
}

// dialContacts is PJSIP_DIAL_CONTACTS(<res>) (chan_pjsip
// dialplan_functions.c): a dial string per contact, joined by "&".
func (f *fakeARI) dialContacts(res string) string {
	out := make([]string, 0, len(f.contacts[res]))
	for _, uri := range f.contacts[res] {
		out = append(out, "PJSIP/"+res+"/"+uri)
	}
	return strings.Join(out, "&")
}
