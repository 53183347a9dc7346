package esl

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
)

// legKind says how a leg came to be tracked.
type legKind int

const (
	kindInbound legKind = iota // parked by the dialplan: a customer
	kindDial                   // originated by Dial (one or more forks)
	kindMonitor                // originated by Monitor (eavesdrop)
	kindAdopted                // found by a resync, origin unknown
)

// leg is one routing leg. A Dial that rings several devices at once has
// one member uuid per device; the member that answers becomes active and
// carries the leg from then on, so routing sees one leg per Dial.
type leg struct {
	id       media.LegID
	kind     legKind
	members  []string               // uuids we asked for, first = id
	gone     map[string]media.Cause // unanswered members that hung up
	active   string                 // the uuid commands go to
	answered bool
	ringing  bool
	pab      bool // park_after_bridge=true is set on the channel
	peer     media.LegID
	caller   string
	hotline  string
	mode     media.MonitorMode
	muted    bool
	seq      uint64 // creation order, so a resync skips legs newer than its snapshot
	// announce: adopted by a resync while still in the dialplan; its
	// CHANNEL_PARK is still to come and makes it a CallArrived.
	announce bool
}

// tracker is the call state the reader goroutine keeps (under Client.mu).
type tracker struct {
	legs   map[media.LegID]*leg
	byUUID map[string]*leg
	byJob  map[string]*leg
	// devices: agent id → contact → registration.
	devices map[string]map[string]registration
	// unregistered: agent|contact → regSeq of its unregister/expire, so a
	// lagging show registrations cannot bring it back.
	unregistered map[string]uint64
	seq          uint64 // last leg seq handed out
	regSeq       uint64 // last registration event seen
	// dueMutes: uuids of legs muted before they answered, now answered;
	// the client sends their uuid_audio.
	dueMutes []string
	// regRefresh: a registration event left an agent with contacts that
	// FreeSWITCH may have dropped (regrefresh.go); regRefreshBusy: a
	// refresh is waiting or its query is out.
	regRefresh     bool
	regRefreshBusy bool
}

type registration struct {
	until time.Time
	seq   uint64 // regSeq of the event that made it (0: from a resync)
	user  string // the SIP user that registered
	dial  string // the contact as a dial string ("sofia/internal/sip:a1@…"), if known
}

func (t *tracker) init() {
	t.legs = map[media.LegID]*leg{}
	t.byUUID = map[string]*leg{}
	t.byJob = map[string]*leg{}
	t.devices = map[string]map[string]registration{}
	t.unregistered = map[string]uint64{}
}

func (t *tracker) add(l *leg) {
	t.seq++
	l.seq = t.seq
	t.legs[l.id] = l
	for _, u := range l.members {
		t.byUUID[u] = l
	}
}

func (t *tracker) remove(l *leg) {
	delete(t.legs, l.id)
	for _, u := range l.members {
		if t.byUUID[u] == l {
			delete(t.byUUID, u)
		}
	}
}

// end removes l and returns its LegEnded fact.
func (t *tracker) end(l *leg, cause media.Cause, now time.Time) media.Fact {
	t.remove(l)
	if p := t.legs[l.peer]; p != nil && p.peer == l.id {
		p.peer = ""
	}
	return media.LegEnded{FactBase: media.FactBase{At: now}, Leg: l.id, Cause: cause}
}

// apply updates the state from one event and returns the facts it yields.
func (t *tracker) apply(ev *event, now time.Time, agentFor func(string) (string, bool)) []media.Fact {
	switch ev.name() {
	case "CHANNEL_PARK":
		return t.onPark(ev, now)
	case "CHANNEL_CALLSTATE":
		switch ev.get("Channel-Call-State") {
		case "RINGING", "EARLY":
			return t.onRinging(ev, now)
		}
	case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
		return t.onRinging(ev, now)
	case "CHANNEL_ANSWER":
		return t.onAnswer(ev.get("Unique-ID"), now)
	case "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE":
		return t.onHangup(ev, now)
	case "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE":
		t.onBridge(ev)
	case "DTMF":
		if l := t.byUUID[ev.get("Unique-ID")]; l != nil && l.active == ev.get("Unique-ID") {
			return []media.Fact{media.DTMF{FactBase: media.FactBase{At: now}, Leg: l.id, Digit: ev.get("DTMF-Digit")}}
		}
	case "BACKGROUND_JOB":
		return t.onJob(ev, now)
	case "CUSTOM sofia::register":
		return t.onRegister(ev, now, agentFor)
	case "CUSTOM sofia::unregister", "CUSTOM sofia::expire":
		return t.onUnregister(ev, now, agentFor)
	}
	// HEARTBEAT, CHANNEL_CREATE and anything unknown carry no fact.
	return nil
}

// onPark: an inbound channel the dialplan parked is a new call. Parks of
// known channels (agent legs after originate, park_after_bridge) are not.
func (t *tracker) onPark(ev *event, now time.Time) []media.Fact {
	uuid := ev.get("Unique-ID")
	if uuid == "" || ev.get("Call-Direction") != "inbound" {
		return nil
	}
	if old := t.byUUID[uuid]; old != nil {
		if !old.announce {
			return nil
		}
		t.remove(old)
	}
	hotline := ev.get("variable_callfloor_did")
	if hotline == "" {
		hotline = ev.get("Caller-Destination-Number")
	}
	l := &leg{
		id: media.LegID(uuid), kind: kindInbound, members: []string{uuid}, active: uuid,
		answered: ev.get("Answer-State") == "answered",
		pab:      ev.get("variable_park_after_bridge") == "true",
		caller:   ev.get("Caller-Caller-ID-Number"), hotline: hotline,
	}
	t.add(l)
	return []media.Fact{media.CallArrived{FactBase: media.FactBase{At: now}, Leg: l.id, Caller: l.caller, Hotline: hotline}}
}

func (t *tracker) onRinging(ev *event, now time.Time) []media.Fact {
	l := t.byUUID[ev.get("Unique-ID")]
	if l == nil || l.kind == kindInbound || l.answered || l.ringing {
		return nil
	}
	l.ringing = true
	return []media.Fact{media.LegRinging{FactBase: media.FactBase{At: now}, Leg: l.id}}
}

// onAnswer: the first member to answer wins the leg; FreeSWITCH cancels
// the other forks (their hangups are then ignored). A customer's answer
// is routing's own doing (Answer) and, as on Asterisk, not reported.
func (t *tracker) onAnswer(uuid string, now time.Time) []media.Fact {
	l := t.byUUID[uuid]
	if l == nil || l.answered {
		return nil
	}
	l.answered, l.active = true, uuid
	if l.muted {
		t.dueMutes = append(t.dueMutes, uuid)
	}
	if l.kind == kindInbound {
		return nil
	}
	return []media.Fact{media.LegAnswered{FactBase: media.FactBase{At: now}, Leg: l.id}}
}

func (t *tracker) onHangup(ev *event, now time.Time) []media.Fact {
	uuid := ev.get("Unique-ID")
	l := t.byUUID[uuid]
	if l == nil {
		return nil
	}
	cause := mapCause(ev.get("Hangup-Cause"))
	if l.answered || len(l.members) == 1 {
		if l.answered && l.active != uuid {
			return nil // a losing fork of an answered Dial
		}
		return []media.Fact{t.end(l, cause, now)}
	}
	// An unanswered fork: the leg ends when every fork has.
	if l.gone == nil {
		l.gone = map[string]media.Cause{}
	}
	if _, dup := l.gone[uuid]; dup {
		return nil
	}
	l.gone[uuid] = cause
	if len(l.gone) < len(l.members) {
		return nil
	}
	return []media.Fact{t.end(l, strongest(l.gone), now)}
}

// onJob handles a bgapi result. A failed originate may produce no channel
// at all (USER_NOT_REGISTERED, SUBSCRIBER_ABSENT): this is then the only
// news of it.
func (t *tracker) onJob(ev *event, now time.Time) []media.Fact {
	job := ev.get("Job-UUID")
	l := t.byJob[job]
	if l == nil {
		return nil
	}
	delete(t.byJob, job)
	if t.legs[l.id] != l || l.answered {
		return nil // already ended or answered
	}
	res := strings.TrimSpace(string(ev.body))
	if rest, ok := strings.CutPrefix(res, "+OK"); ok {
		// The winner's uuid; CHANNEL_ANSWER normally came first.
		if u := strings.TrimSpace(rest); t.byUUID[u] == l {
			return t.onAnswer(u, now)
		}
		return nil
	}
	cause := media.CauseFailed
	if rest, ok := strings.CutPrefix(res, "-ERR"); ok {
		cause = mapCause(strings.TrimSpace(rest))
	}
	// The job names one cause for every fork; forks that rang and ended
	// tell more (the app rang out while the desk phone was unregistered:
	// a no-answer, a RONA, not "unreachable").
	if len(l.gone) > 0 {
		all := map[string]media.Cause{"job:" + job: cause}
		for u, c := range l.gone {
			all[u] = c
		}
		cause = strongest(all)
	}
	return []media.Fact{t.end(l, cause, now)}
}

// onBridge keeps peers: uuid_bridge reports BRIDGE/UNBRIDGE on the A leg
// only, naming both sides.
func (t *tracker) onBridge(ev *event) {
	a, b := t.byUUID[ev.get("Bridge-A-Unique-ID")], t.byUUID[ev.get("Bridge-B-Unique-ID")]
	if a == nil || b == nil {
		return
	}
	if ev.name() == "CHANNEL_BRIDGE" {
		a.peer, b.peer = b.id, a.id
		return
	}
	if a.peer == b.id {
		a.peer = ""
	}
	if b.peer == a.id {
		b.peer = ""
	}
}

func (t *tracker) onRegister(ev *event, now time.Time, agentFor func(string) (string, bool)) []media.Fact {
	agent, ok := agentFor(regUser(ev))
	if !ok {
		return nil
	}
	contact := contactKey(ev.get("contact"))
	secs, _ := strconv.Atoi(ev.get("expires"))
	until := now.Add(time.Duration(secs) * time.Second)
	if t.devices[agent] == nil {
		t.devices[agent] = map[string]registration{}
	}
	if _, known := t.devices[agent][contact]; !known && len(t.devices[agent]) > 0 {
		t.regRefresh = true
	}
	t.regSeq++
	r := registration{until: until, seq: t.regSeq, user: regUser(ev)}
	if p := ev.get("profile-name"); p != "" && strings.HasPrefix(contact, "sip") {
		r.dial = "sofia/" + p + "/" + contactURI(ev.get("contact"))
	}
	t.devices[agent][contact] = r
	delete(t.unregistered, agent+"|"+contact)
	return []media.Fact{media.DeviceState{FactBase: media.FactBase{At: now}, AgentID: agent, Device: contact, Registered: true, Until: latest(t.devices[agent])}}
}

// onUnregister handles sofia::unregister and sofia::expire (whose
// "expires" is an absolute epoch, not a duration, and is not needed). The
// agent is reported gone only when its last contact is.
func (t *tracker) onUnregister(ev *event, now time.Time, agentFor func(string) (string, bool)) []media.Fact {
	agent, ok := agentFor(regUser(ev))
	if !ok {
		return nil
	}
	contact := contactKey(ev.get("contact"))
	t.regSeq++
	t.unregistered[agent+"|"+contact] = t.regSeq
	delete(t.devices[agent], contact)
	if len(t.devices[agent]) > 0 {
		t.regRefresh = true // FreeSWITCH may have dropped those too
		return nil
	}
	delete(t.devices, agent)
	return []media.Fact{media.DeviceState{FactBase: media.FactBase{At: now}, AgentID: agent, Device: contact}}
}

// regUser: register/unregister name the user "from-user", expire "user".
func regUser(ev *event) string {
	for _, k := range []string{"from-user", "user", "username"} {
		if v := ev.get(k); v != "" {
			return v
		}
	}
	return ""
}

func latest(m map[string]registration) time.Time {
	var t time.Time
	for _, r := range m {
		if r.until.After(t) {
			t = r.until
		}
	}
	return t
}

// contactKey reduces a contact to its SIP URI, so sofia events
// (`"" <sip:a3@127.0.0.1:6003>`) and show registrations rows
// (`sofia/internal/sip:a3@127.0.0.1:6003`) name a device alike.
// contactsOf lists the dial strings of every contact registered for a SIP
// user, sorted. Registrations are filed under the agent the user maps to
// (agent), which may hold another user's contacts too.
func (t *tracker) contactsOf(agent, user string) []string {
	var out []string
	for _, r := range t.devices[agent] {
		if r.user == user && r.dial != "" {
			out = append(out, r.dial)
		}
	}
	sort.Strings(out)
	return out
}

// contactURI is the URI inside a contact's <…> with its parameters
// (";transport=tcp", ";fs_nat=yes;fs_path=…"), as the url column of show
// registrations has it after "sofia/<profile>/": dialled without
// ";transport=tcp", FreeSWITCH sends the INVITE over UDP and a TCP phone
// never rings (NORMAL_TEMPORARY_FAILURE on a real FreeSWITCH 1.11.1).
// fs_path is URL-encoded, so the first '>' closes the URI.
func contactURI(s string) string {
	_, uri, ok := strings.Cut(s, "<")
	if !ok {
		return contactKey(s)
	}
	uri, _, _ = strings.Cut(uri, ">")
	return strings.TrimSpace(uri)
}

func contactKey(s string) string {
	i := strings.Index(s, "sip:")
	if j := strings.Index(s, "sips:"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return s
	}
	s = s[i:]
	if j := strings.IndexAny(s, ">;"); j >= 0 {
		s = s[:j]
	}
	return s
}
