package ari

// fakeARI is an in-process Asterisk 22 as far as ARI goes: REST and the
// /ari/events WebSocket, with the JSON shapes of testdata/*.jsonl and the
// behaviour those recordings showed (testdata/README.md): nothing sent on
// connect; an originated channel enters Stasis (StasisStart) only on
// answer; no-answer is only ChannelDestroyed cause 19; a caller's channel
// gets StasisEnd and no ChannelDestroyed; originate to a device without a
// contact is 500 {"error":"Allocation failed"}; one live socket per app, a
// second replaces the first; endpoint subscriptions outlive the socket
// (fakesubs_test.go); events while no socket is connected are lost. Phones are played by the test
// (Ring, AnswerDevice, Busy, NoAnswer, RemoteHangup).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

type fakeChan struct {
	id, name, state   string
	caller, connected string
	context, exten    string
	appName, appData  string
	args              []string
	inStasis          bool
	originated, snoop bool
	bridge            string
	endpoint          string
	moh               bool // music on hold playing on the channel
}

type fakeBridge struct {
	id, typ, tech, name string
	chans               []string
}

type fakeARI struct {
	t       testing.TB
	srv     *httptest.Server
	app     string
	mu      sync.Mutex
	reqs    []string
	taken   int
	chans   map[string]*fakeChan
	bridges map[string]*fakeBridge
	// contacts: endpoint resource → its registered contacts' URIs, in
	// registration order (registered: any; PJSIP_DIAL_CONTACTS).
	contacts map[string][]string
	devState map[string]string // endpoint resource → last device state reported
	order    []string          // endpoint resources, in GET /endpoints order
	ws       *websocket.Conn
	joining  int      // sockets accepted whose handler has not run yet
	backlog  [][]byte // events for the app while a socket is joining
	conns    int
	down     bool
	subs     map[string]int // event source → interest (subscriptions not yet undone)
	// chanEP: channel id → the endpoint resource it is on (kept after
	// the channel is gone, for its last events).
	chanEP map[string]string
	// behind dates events this far in the past: Asterisk's own queue of
	// events for the application (or its clock) running behind.
	behind time.Duration
	// allowed is the application's event filter (nil: every type).
	allowed map[string]bool
	seq     int
	emitted []json.RawMessage
	// restConns: remote addresses REST requests came from (one per TCP
	// connection: keep-alive reuses them).
	restConns map[string]bool
	// logContactReads: log the contact reads before dials (contacts.go).
	// Off, they are answered but left out of the requests tests compare
	// with a flow's: contacts_test.go and percall_test.go pin them.
	logContactReads bool
	// before, if set, runs with the lock held ahead of each REST request
	// (given as logged), to play races: it may use the *Locked helpers.
	before func(req string)
}

func newFake(t testing.TB) *fakeARI {
	f := &fakeARI{t: t, app: "callfloor", chans: map[string]*fakeChan{}, bridges: map[string]*fakeBridge{},
		contacts: map[string][]string{}, subs: map[string]int{}, chanEP: map[string]string{},
		devState: map[string]string{}}
	for _, ep := range fakeEndpoints {
		f.order = append(f.order, ep)
		if fakeRegistered(ep) {
			f.contacts[ep] = []string{fakeContactURI(ep)}
			f.devState[ep] = "NOT_INUSE"
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ari/events", websocket.Server{Handshake: f.handshake, Handler: f.serveWS})
	mux.HandleFunc("/ari/", f.serveREST)
	f.srv = httptest.NewServer(f.auth(mux))
	return f
}

func (f *fakeARI) URL() string { return f.srv.URL + "/ari" }

func (f *fakeARI) Close() {
	f.mu.Lock()
	if f.ws != nil {
		_ = f.ws.Close()
	}
	f.down = true
	f.mu.Unlock()
	f.srv.Close()
}

func (f *fakeARI) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("callfloor:secret"))
		if r.Header.Get("Authorization") != want {
			http.Error(w, `{"message":"Authentication required"}`, http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handshake accepts a socket for the app. From here on the app's events
// are kept for it: the client may act as soon as the upgrade answer
// arrives, before serveWS has run (a race a loaded machine shows).
func (f *fakeARI) handshake(_ *websocket.Config, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("app") != f.app || q.Get("subscribeAll") != "false" {
		return fmt.Errorf("fake: bad events query %q", r.URL.RawQuery)
	}
	f.mu.Lock()
	f.joining++
	f.mu.Unlock()
	return nil
}

// serveWS keeps one live socket per app: a newcomer replaces the old one.
func (f *fakeARI) serveWS(ws *websocket.Conn) {
	f.mu.Lock()
	f.joining--
	if f.ws != nil {
		msg := f.event("ApplicationReplaced")
		f.emitted = append(f.emitted, msg)
		_ = websocket.Message.Send(f.ws, string(msg))
		_ = f.ws.Close()
	}
	f.ws = ws
	f.conns++
	for _, msg := range f.backlog {
		_ = websocket.Message.Send(ws, string(msg))
	}
	f.backlog = nil
	f.mu.Unlock()
	var discard []byte
	for websocket.Message.Receive(ws, &discard) == nil {
	}
	f.mu.Lock()
	if f.ws == ws { // the app's socket is gone; its endpoint subscriptions stay (fakesubs_test.go)
		f.ws = nil
	}
	f.mu.Unlock()
}

// Cut drops the socket; with down, refuses reconnects until SetDown(false).
func (f *fakeARI) Cut(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if f.ws != nil {
		_ = f.ws.Close()
		f.ws = nil
	}
}

func (f *fakeARI) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeARI) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeARI) sendLocked(msg []byte) {
	if !f.allowedLocked(msg) {
		return // the application's event filter drops it, as Asterisk does
	}
	copies := 1
	if f.repeatedLocked(msg) {
		copies = 2 // once more through the endpoint subscription (fakesubs_test.go)
	}
	for range copies {
		f.emitted = append(f.emitted, msg)
		switch {
		case f.ws != nil:
			_ = websocket.Message.Send(f.ws, string(msg))
		case f.joining > 0:
			f.backlog = append(f.backlog, msg)
		} // else: Asterisk does not queue events for an absent socket
	}
}

// Send writes a raw message to the socket (malformed / unknown events).
func (f *fakeARI) Send(raw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ws != nil {
		_ = websocket.Message.Send(f.ws, raw)
	}
}

// Requests returns the requests logged since the last call.
func (f *fakeARI) takeRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.reqs[f.taken:])
	f.taken = len(f.reqs)
	return out
}

// expectRequests waits for exactly want (in any order: follow-up work
// runs concurrently with commands) to be the next requests logged.
func (f *fakeARI) expectRequests(want ...string) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.reqs) - f.taken
		f.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let a stray extra request show up
	got := f.takeRequests()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		f.t.Fatalf("ARI requests:\n got  %q\n want %q", got, want)
	}
}

func (f *fakeARI) nextID() int { f.seq++; return f.seq }

func (f *fakeARI) log(r *http.Request) {
	q := r.URL.Query().Encode()
	line := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/ari")
	if q != "" {
		line += "?" + q
	}
	if f.logContactReads || !strings.Contains(line, "variable=PJSIP_DIAL_CONTACTS") {
		f.reqs = append(f.reqs, line)
	}
	if f.restConns == nil {
		f.restConns = map[string]bool{}
	}
	f.restConns[r.RemoteAddr] = true
}

func reply(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeARI) serveREST(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log(r)
	if f.before != nil { // a phone acting just as Asterisk takes the request
		f.before(f.reqs[len(f.reqs)-1])
	}
	p := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/ari"), "/"), "/")
	q := r.URL.Query()
	if r.Method == "PUT" && len(p) == 3 && p[0] == "applications" && p[2] == "eventFilter" {
		status, body := f.setFilter(p[1], r.Body)
		reply(w, status, body)
		return
	}
	status, body := f.route(r.Method, p, q)
	reply(w, status, body)
}

func notFoundBody(what string) map[string]string {
	return map[string]string{"message": what + " not found"}
}

func (f *fakeARI) route(method string, p []string, q url.Values) (int, any) {
	switch {
	case method == "GET" && len(p) == 1 && p[0] == "channels":
		out := []any{}
		for _, id := range f.sortedChans() {
			out = append(out, f.chanJSON(f.chans[id]))
		}
		return 200, out
	case method == "GET" && len(p) == 1 && p[0] == "bridges":
		out := []any{}
		for _, b := range f.bridges {
			out = append(out, f.bridgeJSON(b))
		}
		return 200, out
	case method == "GET" && len(p) == 1 && p[0] == "endpoints":
		out := []any{}
		for _, ep := range f.order {
			out = append(out, f.endpointJSON(ep))
		}
		return 200, out
	case method == "GET" && len(p) == 2 && p[0] == "applications":
		if p[1] != f.app {
			return 404, notFoundBody("Application")
		}
		return 200, f.applicationJSON()
	case (method == "POST" || method == "DELETE") && len(p) == 3 && p[0] == "applications" && p[2] == "subscription":
		if p[1] != f.app {
			return 404, notFoundBody("Application")
		}
		return f.subscription(method == "POST", q.Get("eventSource"))
	case len(p) >= 1 && p[0] == "channels":
		return f.routeChannels(method, p[1:], q)
	case len(p) >= 1 && p[0] == "bridges":
		return f.routeBridges(method, p[1:], q)
	}
	return 404, map[string]string{"message": "Resource not found"}
}

func (f *fakeARI) sortedChans() []string {
	ids := make([]string, 0, len(f.chans))
	for id := range f.chans {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (f *fakeARI) routeChannels(method string, p []string, q url.Values) (int, any) {
	if len(p) == 0 && method == "POST" {
		return f.originate(q)
	}
	if len(p) == 0 {
		return 405, nil
	}
	ch := f.chans[p[0]]
	if ch == nil {
		return 404, notFoundBody("Channel")
	}
	op := ""
	if len(p) > 1 {
		op = p[1]
	}
	switch method + " " + op {
	case "GET ":
		return 200, f.chanJSON(ch)
	case "GET variable":
		// Functions are evaluated on the channel (resource_channels.c,
		// ast_func_read2); only PJSIP_DIAL_CONTACTS is modelled.
		if res, ok := strings.CutPrefix(q.Get("variable"), "PJSIP_DIAL_CONTACTS("); ok && strings.HasSuffix(res, ")") {
			return 200, map[string]string{"value": f.dialContacts(strings.TrimSuffix(res, ")"))}
		}
		return 404, map[string]string{"message": "Provided variable was not found"}
	case "DELETE ":
		if _, err := strconv.Atoi(q.Get("reason_code")); q.Has("reason_code") && err != nil {
			return 400, map[string]string{"message": "Invalid reason"}
		}
		f.hangup(ch, 32, true)
		return 204, nil
	case "POST answer":
		ch.state = "Up"
		f.sendLocked(f.chanEvent("ChannelStateChange", ch))
		return 204, nil
	case "POST ring", "POST mute", "DELETE mute", "POST moh", "DELETE moh":
		// POST/DELETE /channels/{id}/moh as Asterisk's ARI reference
		// documents them (Channels REST API: mohClass; 204, 404, 409 not
		// in Stasis): the music is the channel's, bridged or not, until
		// stopped.
		if !ch.inStasis {
			return 409, map[string]string{"message": "Channel not in Stasis application"}
		}
		switch method + " " + op {
		case "POST moh":
			ch.moh = true
		case "DELETE moh":
			ch.moh = false
		}
		return 204, nil
	case "POST snoop":
		id := q.Get("snoopId")
		if id == "" {
			id = fmt.Sprintf("1795288300.%d", f.nextID())
		}
		sn := &fakeChan{id: id, name: fmt.Sprintf("Snoop/%s-%08x", ch.id, f.nextID()), state: "Up",
			context: "default", exten: "s", appName: "Stasis", appData: f.app + "," + q.Get("appArgs"),
			args: strings.Split(q.Get("appArgs"), ","), snoop: true}
		f.chans[id] = sn
		// As on a real Asterisk, the snoop enters the application a
		// moment after the answer (its own thread): until then adding it
		// to a bridge is 422 "Channel not in Stasis application".
		time.AfterFunc(10*time.Millisecond, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.chans[id] == sn {
				sn.inStasis = true
				f.sendLocked(f.event("StasisStart", kv{"args", sn.args}, kv{"channel", f.chanJSON(sn)}))
			}
		})
		return 200, f.chanJSON(sn)
	}
	return 404, map[string]string{"message": "Resource not found"}
}

// originate: 500 Allocation failed for a device without a contact, else a
// Down channel and a Dial event; the test plays the phone afterwards.
func (f *fakeARI) originate(q url.Values) (int, any) {
	ep := q.Get("endpoint")
	tech, res, _ := strings.Cut(ep, "/")
	trunk := strings.HasSuffix(res, "@trunk")
	aor, _, _ := strings.Cut(res, "/") // PJSIP/<aor>/<contact URI> dials one contact
	if tech != "PJSIP" || !trunk && !f.registered(aor) {
		return 500, map[string]string{"error": "Allocation failed"}
	}
	if q.Get("app") != f.app {
		return 400, map[string]string{"message": "app required"}
	}
	id := q.Get("channelId")
	if id == "" {
		id = fmt.Sprintf("1795288200.%d", f.nextID())
	}
	name, _, _ := strings.Cut(aor, "@")
	caller := ""
	if cid := q.Get("callerId"); cid != "" {
		_, rest, _ := strings.Cut(cid, "<")
		caller = strings.TrimSuffix(rest, ">")
	}
	ch := &fakeChan{id: id, name: fmt.Sprintf("PJSIP/%s-%08x", name, f.nextID()), state: "Down",
		caller: caller, connected: caller, context: "from-internal", exten: "s", appName: "AppDial2",
		appData: "(Outgoing Line)", args: strings.Split(q.Get("appArgs"), ","), originated: true, endpoint: res}
	f.chans[id] = ch
	f.chanEP[id] = chanEndpoint(ch)
	f.endpointChangedLocked(ch)
	f.sendLocked(f.event("Dial", kv{"dialstatus", ""}, kv{"forward", ""}, kv{"dialstring", res}, kv{"peer", f.chanJSON(ch)}))
	return 200, f.chanJSON(ch)
}

func (f *fakeARI) routeBridges(method string, p []string, q url.Values) (int, any) {
	if len(p) == 0 && method == "POST" {
		id := q.Get("bridgeId")
		if id == "" {
			id = fmt.Sprintf("bridge-%d", f.nextID())
		}
		tech := "simple_bridge"
		if q.Get("type") == "holding" {
			tech = "holding_bridge"
		}
		b := &fakeBridge{id: id, typ: q.Get("type"), tech: tech, name: q.Get("name"), chans: []string{}}
		f.bridges[id] = b
		return 200, f.bridgeJSON(b)
	}
	if len(p) == 0 {
		return 405, nil
	}
	b := f.bridges[p[0]]
	if b == nil {
		return 404, notFoundBody("Bridge")
	}
	op := ""
	if len(p) > 1 {
		op = p[1]
	}
	switch method + " " + op {
	case "GET ":
		return 200, f.bridgeJSON(b)
	case "DELETE ":
		for _, id := range slices.Clone(b.chans) {
			f.leave(f.chans[id])
		}
		delete(f.bridges, b.id)
		f.sendLocked(f.event("BridgeDestroyed", kv{"bridge", f.bridgeJSON(b)}))
		return 204, nil
	case "POST moh", "DELETE moh":
		return 204, nil
	case "POST addChannel", "POST removeChannel":
		ids := strings.Split(q.Get("channel"), ",")
		for _, id := range ids {
			ch := f.chans[id]
			if ch == nil {
				return 400, map[string]string{"message": "Channel not found"}
			}
			if !ch.inStasis {
				return 422, map[string]string{"message": "Channel not in Stasis application"}
			}
			if op == "removeChannel" && ch.bridge != b.id {
				return 422, map[string]string{"message": "Channel not in this bridge"}
			}
		}
		for _, id := range ids {
			ch := f.chans[id]
			f.leave(ch)
			if op == "addChannel" {
				ch.bridge = b.id
				b.chans = append(b.chans, id)
				f.sendLocked(f.event("ChannelEnteredBridge", kv{"bridge", f.bridgeJSON(b)}, kv{"channel", f.chanJSON(ch)}))
			}
		}
		return 204, nil
	}
	return 404, map[string]string{"message": "Resource not found"}
}

// leave takes a channel out of its bridge, with the event.
func (f *fakeARI) leave(ch *fakeChan) {
	if ch == nil || ch.bridge == "" {
		return
	}
	b := f.bridges[ch.bridge]
	ch.bridge = ""
	if b == nil {
		return
	}
	b.chans = slices.DeleteFunc(b.chans, func(id string) bool { return id == ch.id })
	f.sendLocked(f.event("ChannelLeftBridge", kv{"bridge", f.bridgeJSON(b)}, kv{"channel", f.chanJSON(ch)}))
}

// hangup ends a channel as Asterisk reported it: HangupRequest, out of
// the bridge, StasisEnd if in Stasis, and ChannelDestroyed for everything
// except a caller's or a snoop's channel that was in Stasis.
func (f *fakeARI) hangup(ch *fakeChan, cause int, soft bool) {
	fields := []kv{}
	if cause != 0 {
		fields = append(fields, kv{"cause", cause})
	}
	if soft {
		fields = append(fields, kv{"soft", true})
	}
	fields = append(fields, kv{"channel", f.chanJSON(ch)})
	f.sendLocked(f.event("ChannelHangupRequest", fields...))
	f.leave(ch)
	delete(f.chans, ch.id)
	if ch.inStasis {
		f.sendLocked(f.chanEvent("StasisEnd", ch))
		if !ch.originated {
			f.endpointChangedLocked(ch)
			return
		}
	}
	f.destroyed(ch, 16, "Normal Clearing")
}

func (f *fakeARI) destroyed(ch *fakeChan, cause int, txt string) {
	delete(f.chans, ch.id)
	f.sendLocked(f.event("ChannelDestroyed", kv{"cause", cause}, kv{"cause_txt", txt}, kv{"channel", f.chanJSON(ch)}))
	f.endpointChangedLocked(ch)
}
