package ari

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// JSON as Asterisk 22.10.1 writes it (testdata/*.jsonl): field names and
// order of channels, bridges, endpoints and event envelopes.

type kv struct {
	k string
	v any
}

type wireCID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type wireDialplan struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int    `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

type wireChannel struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	State        string       `json:"state"`
	ProtocolID   string       `json:"protocol_id"`
	Caller       wireCID      `json:"caller"`
	Connected    wireCID      `json:"connected"`
	Accountcode  string       `json:"accountcode"`
	Dialplan     wireDialplan `json:"dialplan"`
	Creationtime string       `json:"creationtime"`
	Language     string       `json:"language"`
}

type wireBridge struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"`
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"`
	Creationtime string   `json:"creationtime"`
	VideoMode    string   `json:"video_mode"`
}

type wireEndpoint struct {
	Technology string   `json:"technology"`
	Resource   string   `json:"resource"`
	State      string   `json:"state"`
	ChannelIDs []string `json:"channel_ids"`
}

const ariTime = "2006-01-02T15:04:05.000-0700"

func (f *fakeARI) chanJSON(ch *fakeChan) wireChannel {
	prio := 1
	if !ch.originated && !ch.snoop {
		prio = 2
	}
	return wireChannel{ID: ch.id, Name: ch.name, State: ch.state, ProtocolID: "1-" + ch.id + "@127.0.0.1",
		Caller: wireCID{ch.caller, ch.caller}, Connected: wireCID{ch.connected, ch.connected},
		Dialplan:     wireDialplan{ch.context, ch.exten, prio, ch.appName, ch.appData},
		Creationtime: "2026-11-21T19:08:37.790+0000", Language: "en"}
}

func (f *fakeARI) bridgeJSON(b *fakeBridge) wireBridge {
	return wireBridge{ID: b.id, Technology: b.tech, BridgeType: b.typ, BridgeClass: "stasis", Creator: "Stasis",
		Name: b.name, Channels: append([]string{}, b.chans...), Creationtime: "2026-11-21T19:08:37.791+0000", VideoMode: "talker"}
}

func (f *fakeARI) endpointJSON(res string) wireEndpoint {
	state := "offline"
	if f.registered(res) {
		state = "online"
	}
	return wireEndpoint{Technology: "PJSIP", Resource: res, State: state, ChannelIDs: []string{}}
}

// event builds an event envelope: type, timestamp, fields, asterisk_id,
// application — the recorded order.
func (f *fakeARI) event(typ string, fields ...kv) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"type":%q,"timestamp":%q`, typ, time.Now().Add(-f.behind).UTC().Format(ariTime))
	for _, x := range fields {
		v, err := json.Marshal(x.v)
		if err != nil {
			f.t.Errorf("fake: marshal %s: %v", x.k, err)
		}
		fmt.Fprintf(&b, `,%q:%s`, x.k, v)
	}
	fmt.Fprintf(&b, `,"asterisk_id":"02:fc:00:00:00:01","application":%q}`, f.app)
	return b.Bytes()
}

func (f *fakeARI) chanEvent(typ string, ch *fakeChan) []byte {
	return f.event(typ, kv{"channel", f.chanJSON(ch)})
}

// Inbound: the trunk delivers a call the dialplan sends to Stasis.
func (f *fakeARI) Inbound(caller, hotline string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nextID()
	ch := &fakeChan{id: fmt.Sprintf("1795288117.%d", n), name: fmt.Sprintf("PJSIP/trunk-%08x", n), state: "Ring",
		caller: caller, context: "from-trunk", exten: hotline, appName: "Stasis", appData: f.app, args: []string{}, inStasis: true}
	f.chans[ch.id] = ch
	f.chanEP[ch.id] = chanEndpoint(ch)
	f.endpointChangedLocked(ch)
	f.sendLocked(f.event("StasisStart", kv{"args", ch.args}, kv{"channel", f.chanJSON(ch)}))
	return ch.id
}

func (f *fakeARI) mustChan(id string) *fakeChan {
	ch := f.chans[id]
	if ch == nil {
		f.t.Fatalf("fake: no channel %s", id)
	}
	return ch
}

func (f *fakeARI) dialEvent(ch *fakeChan, status string) []byte {
	return f.event("Dial", kv{"dialstatus", status}, kv{"forward", ""}, kv{"dialstring", ch.endpoint}, kv{"peer", f.chanJSON(ch)})
}

// Ring: the device sends 180.
func (f *fakeARI) Ring(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ringLocked(f.mustChan(id))
}

// AnswerDevice: 200 OK; only now does the channel enter Stasis.
func (f *fakeARI) AnswerDevice(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answerLocked(f.mustChan(id))
}

// Busy: 486 — HangupRequest 17, Dial BUSY, ChannelDestroyed 17.
func (f *fakeARI) Busy(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLocked(f.mustChan(id), 17, "User busy", "BUSY")
}

// NoAnswer: the originate timeout expired — ChannelDestroyed 19 only.
func (f *fakeARI) NoAnswer(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroyed(f.mustChan(id), 19, "User alerting, no answer")
}

// RemoteHangup: the phone sends BYE.
func (f *fakeARI) RemoteHangup(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangup(f.mustChan(id), 16, false)
}

// Register / Unregister a device's contact; events only reach an app
// subscribed to the endpoint (or all of PJSIP) on the current socket.
func (f *fakeARI) Register(res string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	uri := fakeContactURI(res)
	if on {
		f.contacts[res] = []string{uri}
	} else {
		delete(f.contacts, res)
	}
	if !slices.Contains(f.order, res) { // a device that registers is configured in pjsip.conf
		f.order = append(f.order, res)
	}
	defer f.deviceChangedLocked(res)
	if !f.endpointSubscribed(res) {
		return
	}
	ep := f.endpointJSON(res)
	status := "Unreachable"
	if on {
		status = "Reachable"
	}
	f.sendLocked(f.event("EndpointStateChange", kv{"endpoint", ep}))
	f.sendLocked(f.event("PeerStatusChange", kv{"endpoint", ep}, kv{"peer", map[string]string{"peer_status": status}}))
	contact := map[string]string{"uri": uri, "contact_status": "NonQualified", "aor": res, "roundtrip_usec": "0"}
	if !on {
		contact["contact_status"] = "Removed"
	}
	f.sendLocked(f.event("ContactStatusChange", kv{"endpoint", ep}, kv{"contact_info", contact}))
}

// registered says whether endpoint resource res has a contact.
func (f *fakeARI) registered(res string) bool { return len(f.contacts[res]) > 0 }

// fakeContactURI is the contact a device registers from in the fake.
func fakeContactURI(res string) string { return "sip:" + res + "@127.0.0.1:5073" }

// snoopOn returns the snoop channel currently spying on id.
func (f *fakeARI) snoopOn(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for cid, ch := range f.chans {
		if ch.snoop && strings.HasPrefix(ch.name, "Snoop/"+id+"-") {
			return cid
		}
	}
	f.t.Fatalf("fake: no snoop on %s", id)
	return ""
}

// bridgeNamed returns the id of the bridge with that name.
func (f *fakeARI) bridgeNamed(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, b := range f.bridges {
		if b.name == name {
			return id
		}
	}
	f.t.Fatalf("fake: no bridge %s", name)
	return ""
}

// channelFor returns the live channel originated to an endpoint resource.
func (f *fakeARI) channelFor(res string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, ch := range f.chans {
		if ch.endpoint == res {
			return id
		}
	}
	f.t.Fatalf("fake: no channel to %s", res)
	return ""
}

func (f *fakeARI) hasBridge(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bridges {
		if b.name == name && len(b.chans) > 0 {
			return true
		}
	}
	return false
}

// answerAtOnce answers two channels before the client can react.
func (f *fakeARI) answerAtOnce(a, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range []string{a, b} {
		ch := f.mustChan(id)
		ch.state, ch.appName, ch.appData, ch.inStasis = "Up", "Stasis", f.app+","+strings.Join(ch.args, ","), true
		f.sendLocked(f.event("StasisStart", kv{"args", ch.args}, kv{"channel", f.chanJSON(ch)}))
	}
}

// Vanish drops a channel from Asterisk's table, and from the bridges it
// was in, with no event at all: a hang-up as it looks once the socket
// that would have carried it was lost.
func (f *fakeARI) Vanish(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.chans, id)
	for _, b := range f.bridges {
		b.chans = slices.DeleteFunc(b.chans, func(c string) bool { return c == id })
	}
}

// setFilter is PUT /applications/{app}/eventFilter: {"allowed": [{"type":
// …}, …]} keeps only those event types (ApplicationReplaced, which
// Asterisk sends regardless, passes too).
func (f *fakeARI) setFilter(app string, body io.Reader) (int, any) {
	if app != f.app {
		return 404, notFoundBody("Application")
	}
	var filter struct {
		Allowed []struct {
			Type string `json:"type"`
		} `json:"allowed"`
	}
	if err := json.NewDecoder(body).Decode(&filter); err != nil {
		return 400, map[string]string{"message": "bad filter: " + err.Error()}
	}
	f.allowed = map[string]bool{}
	for _, a := range filter.Allowed {
		f.allowed[a.Type] = true
	}
	return 200, map[string]any{"name": f.app}
}

// allowedLocked says whether the event filter lets msg through.
func (f *fakeARI) allowedLocked(msg []byte) bool {
	if f.allowed == nil {
		return true
	}
	var ev struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(msg, &ev) != nil || ev.Type == "" || ev.Type == "ApplicationReplaced" {
		return true
	}
	return f.allowed[ev.Type]
}

// ringLocked: the device sends 180.
func (f *fakeARI) ringLocked(ch *fakeChan) {
	ch.state = "Ringing"
	f.sendLocked(f.chanEvent("ChannelStateChange", ch))
	f.sendLocked(f.dialEvent(ch, "RINGING"))
	f.deviceChangedLocked(chanEndpoint(ch))
}

// answerLocked: 200 OK; the channel enters Stasis (as AnswerDevice).
func (f *fakeARI) answerLocked(ch *fakeChan) {
	ch.state = "Up"
	f.sendLocked(f.chanEvent("ChannelStateChange", ch))
	f.sendLocked(f.dialEvent(ch, "ANSWER"))
	f.deviceChangedLocked(chanEndpoint(ch))
	ch.appName, ch.appData, ch.inStasis = "Stasis", f.app+","+strings.Join(ch.args, ","), true
	f.sendLocked(f.event("ChannelVarset", kv{"variable", "STASISSTATUS"}, kv{"value", ""}, kv{"channel", f.chanJSON(ch)}))
	f.sendLocked(f.event("StasisStart", kv{"args", ch.args}, kv{"channel", f.chanJSON(ch)}))
}

// failLocked: the device refuses the INVITE, as Busy does for 486. A 603
// Decline is modelled the same way with chan_pjsip's cause for it (21,
// AST_CAUSE_CALL_REJECTED) and the BUSY Dial status chan_pjsip queues
// for 486, 600 and 603 alike.
func (f *fakeARI) failLocked(ch *fakeChan, cause int, txt, dialStatus string) {
	f.sendLocked(f.event("ChannelHangupRequest", kv{"cause", cause}, kv{"channel", f.chanJSON(ch)}))
	f.sendLocked(f.dialEvent(ch, dialStatus))
	f.destroyed(ch, cause, txt)
}

// AddContact registers one more contact under an AOR: Asterisk sends
// ContactStatusChange "Created" to applications subscribed to the
// endpoint or its technology.
func (f *fakeARI) AddContact(aor, uri string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Equal(f.contacts[aor], []string{fakeContactURI(aor)}) {
		f.contacts[aor] = nil // the first contact replaces the fake's default
	}
	if !slices.Contains(f.contacts[aor], uri) {
		f.contacts[aor] = append(f.contacts[aor], uri)
	}
	defer f.deviceChangedLocked(aor)
	if !f.endpointSubscribed(aor) {
		return
	}
	f.sendLocked(f.event("ContactStatusChange",
		kv{"contact_info", map[string]string{"uri": uri, "contact_status": "Created", "aor": aor, "roundtrip_usec": "0"}},
		kv{"endpoint", f.endpointJSON(aor)}))
}
