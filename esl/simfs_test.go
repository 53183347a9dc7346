package esl

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
)

// simFS is a reactive fake FreeSWITCH for the end-to-end tests, where
// routing — not the test — decides which command comes next, so a fixed
// replay cannot follow. It keeps a channel table and answers every
// command the way FreeSWITCH 1.11.1 did in the recordings
// (/work/shared/fixtures/esl/README.md, testdata/TRANSCRIPTS.md): replies
// framed exactly (command/reply without Content-Length, api/response with
// Content-Type first), events cut from recorded frames (templates), the
// bgapi reply before its BACKGROUND_JOB, CHANNEL_BRIDGE/UNBRIDGE on the A
// uuid only, a leg displaced by uuid_bridge or left by its partner parked
// with park_after_bridge=true and hung up without it, failed originates
// of unregistered users with no channel events, "-ERR No such channel!"
// for missing uuids, and no replay of events a connection missed.
type simFS struct {
	t   testing.TB
	ln  net.Listener
	tpl templates
	wg  sync.WaitGroup

	mu       sync.Mutex // guards everything below; held while writing
	chans    map[string]*simChan
	created  []string // channel uuids in creation order
	behavior map[string]dialBehavior
	cmds     []string
	cur      net.Conn // the subscribed connection, if any
	conns    []net.Conn
	closing  bool
	refuse   bool // close new connections at once (FreeSWITCH unreachable)
	// holdKills: uuid_kill answers +OK but the hangup waits for
	// releaseKills (FreeSWITCH slow to tear a channel down).
	holdKills bool
	heldKills []func()
	// registrations are show registrations' rows.
	registrations []map[string]string
	seq           int // Event-Sequence
	jobs          int
}

// dialBehavior is how a dialled device responds to an originate.
type dialBehavior int

const (
	dialAnswer       dialBehavior = iota // rings (180), answers (200)
	dialRing                             // rings until answerLeg, a hangup or uuid_kill
	dialNoAnswer                         // rings, then originate_timeout: NO_ANSWER
	dialBusy                             // 486: USER_BUSY, no ringing
	dialUnregistered                     // no contact: only the job's -ERR
	dialDecline                          // rings, then 603: CALL_REJECTED
)

type simChan struct {
	uuid     string
	inbound  bool
	answered bool
	pab      bool
	peer     string // bridge partner
	bridgeA  bool   // this leg is the bridge's A side (events go on it)
	caller   string
	did      string
	app      string        // "park" or "eavesdrop"
	target   string        // eavesdrop target uuid
	orig     *originateJob // the originate that made this leg, if any
	endpoint string        // the fork's endpoint that rang, for an originated leg
}

// originateJob is one bgapi originate: its forks ring at once, the first
// to answer wins (the others hang up LOSE_RACE), and the job's result
// comes once: +OK <winner> or, when every fork failed, -ERR <cause>.
type originateJob struct {
	job, arg string
	forks    int
	failed   int
	done     bool
}

func newSimFS(t testing.TB) *simFS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &simFS{t: t, ln: ln, tpl: loadTemplates(t), chans: map[string]*simChan{}, behavior: map[string]dialBehavior{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *simFS) addr() string { return s.ln.Addr().String() }

func (s *simFS) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			return
		}
		if s.refuse {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

func (s *simFS) close() {
	s.mu.Lock()
	s.closing = true
	conns := s.conns
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
}

// serve runs one ESL connection: greeting, auth, then commands.
func (s *simFS) serve(c net.Conn) {
	defer c.Close()
	defer func() {
		s.mu.Lock()
		if s.cur == c {
			s.cur = nil
		}
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "Content-Type: auth/request\n\n"); err != nil {
		return
	}
	for {
		cmd, err := readCommand(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return
		}
		s.cmds = append(s.cmds, cmd)
		s.handle(c, cmd)
		s.mu.Unlock()
	}
}

func reply(text string) string { return "Content-Type: command/reply\nReply-Text: " + text + "\n\n" }

// write sends frames on c, ignoring a connection the client dropped.
func write(c net.Conn, frames ...string) {
	for _, f := range frames {
		if _, err := io.WriteString(c, f); err != nil {
			return
		}
	}
}

// emit sends events to the subscribed connection; with none they are
// lost, as on FreeSWITCH.
func (s *simFS) emit(frames ...string) {
	if s.cur != nil {
		write(s.cur, frames...)
	}
}

// handle answers one command (under s.mu).
func (s *simFS) handle(c net.Conn, cmd string) {
	word, rest, _ := strings.Cut(cmd, " ")
	switch word {
	case "auth":
		if rest != "callfloor" {
			write(c, reply("-ERR invalid"))
			return
		}
		write(c, reply("+OK accepted"))
		return
	case "event":
		write(c, reply("+OK event listener enabled plain"))
		s.cur = c
		return
	case "bgapi":
		if arg, ok := strings.CutPrefix(rest, "originate "); ok {
			s.originate(c, arg)
			return
		}
	case "api":
		body, then := s.api(rest)
		write(c, apiResponse(body))
		if then != nil {
			then() // events the command causes follow its response
		}
		return
	}
	s.t.Errorf("fake FreeSWITCH: unexpected command %q", cmd)
	write(c, reply("-ERR command not found"))
}

// api runs an api command and returns its response body and what it
// causes (events), which is done after the response is sent, as recorded.
func (s *simFS) api(line string) (string, func()) {
	f := strings.Fields(line)
	noChan := "-ERR No such channel!\n"
	if len(f) >= 4 && f[0] == "show" && f[2] == "as" && f[3] == "json" {
		return s.show(f[1]), nil
	}
	if len(f) < 2 {
		return "-ERR no_such_command Command not found!\n", nil
	}
	ch := s.chans[f[1]]
	switch f[0] {
	case "uuid_answer":
		if ch == nil {
			return noChan, nil
		}
		return "+OK\n", func() { s.answer(ch) }
	case "uuid_pre_answer", "uuid_recv_dtmf", "uuid_audio":
		if ch == nil {
			return noChan, nil
		}
		return "+OK\n", nil
	case "uuid_broadcast":
		if ch == nil {
			return noChan, nil
		}
		return "+OK Message sent\n", nil
	case "uuid_setvar":
		if ch == nil {
			return noChan, nil
		}
		if len(f) == 4 && f[2] == "park_after_bridge" {
			ch.pab = f[3] == "true"
		}
		return "+OK\n", nil
	case "uuid_bridge":
		if len(f) != 3 || ch == nil || s.chans[f[2]] == nil {
			return "-ERR Invalid uuid\n", nil
		}
		b := s.chans[f[2]]
		return "+OK " + f[2] + "\n", func() { s.bridge(ch, b) }
	case "uuid_kill":
		if ch == nil {
			return noChan, nil
		}
		cause := "NORMAL_CLEARING"
		if len(f) > 2 {
			cause = f[2]
		}
		if s.holdKills {
			s.heldKills = append(s.heldKills, func() { s.hangup(ch, cause) })
			return "+OK\n", nil
		}
		return "+OK\n", func() { s.hangup(ch, cause) }
	}
	return "-ERR no_such_command Command not found!\n", nil
}

func (s *simFS) show(what string) string {
	var rows []map[string]string
	switch what {
	case "channels":
		for _, u := range s.created {
			ch := s.chans[u]
			if ch == nil {
				continue
			}
			dir, dest, cid := "outbound", "", ch.caller
			if ch.inbound {
				dir, dest = "inbound", ch.did
			}
			// As recorded (reconnect.jsonl): a bridged leg runs
			// "uuid_bridge"; a ringing originate runs nothing yet.
			state, app, appData := "RINGING", ch.app, ch.target
			switch {
			case ch.peer != "":
				app, appData = "uuid_bridge", ch.peer
			case !ch.inbound && !ch.answered:
				app = ""
			}
			if ch.answered {
				state = "ACTIVE"
			}
			rows = append(rows, map[string]string{"uuid": u, "direction": dir, "callstate": state,
				"cid_num": cid, "dest": dest, "application": app, "application_data": appData})
		}
	case "calls":
		for _, u := range s.created {
			if ch := s.chans[u]; ch != nil && ch.peer != "" && ch.bridgeA {
				rows = append(rows, map[string]string{"uuid": u, "b_uuid": ch.peer, "callstate": "ACTIVE", "b_callstate": "ACTIVE"})
			}
		}
	case "registrations":
		rows = s.registrations
	default:
		return "-ERR no_such_command Command not found!\n"
	}
	if len(rows) == 0 {
		return emptyRows
	}
	b, err := json.Marshal(map[string]any{"row_count": len(rows), "rows": rows})
	if err != nil {
		panic(err)
	}
	return string(b) // compact, no trailing newline, as recorded
}

func (s *simFS) nextSeq() string { s.seq++; return fmt.Sprint(s.seq) }

// jobDone emits a bgapi job's BACKGROUND_JOB with its result.
func (s *simFS) jobDone(job, arg, result string) {
	s.seq++
	s.emit(s.tpl.jobEvent(job, arg, result, s.seq))
}

// ev renders a channel event for ch.
func (s *simFS) ev(name string, ch *simChan, set map[string]string) string {
	if set == nil {
		set = map[string]string{}
	}
	set["Event-Sequence"] = s.nextSeq()
	set["Caller-Caller-ID-Number"] = ch.caller
	if ch.inbound {
		set["Caller-Destination-Number"] = ch.did
		set["variable_callfloor_did"] = ch.did
	}
	if _, ok := set["Answer-State"]; !ok {
		set["Answer-State"] = map[bool]string{true: "answered", false: "ringing"}[ch.answered]
	}
	if _, ok := set["Channel-Call-State"]; !ok && name != "CHANNEL_CALLSTATE" {
		set["Channel-Call-State"] = map[bool]string{true: "ACTIVE", false: "RINGING"}[ch.answered]
	}
	frame := s.tpl.channelEvent(name, ch.inbound, ch.uuid, ch.peer, set)
	if frame == "" {
		s.t.Errorf("fake FreeSWITCH: no recorded %s to send for %s", name, ch.uuid)
	}
	return frame
}

func callstate(st string) map[string]string { return map[string]string{"Channel-Call-State": st} }

func (s *simFS) add(ch *simChan) {
	s.chans[ch.uuid] = ch
	s.created = append(s.created, ch.uuid)
}

// inbound: a trunk call the dialplan parks with callfloor_did set.
func (s *simFS) inbound(uuid, caller, did string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := &simChan{uuid: uuid, inbound: true, caller: caller, did: did, app: "park"}
	s.add(ch)
	s.emit(s.ev("CHANNEL_CREATE", ch, callstate("DOWN")),
		s.ev("CHANNEL_CALLSTATE", ch, callstate("RINGING")),
		s.ev("CHANNEL_PARK", ch, nil))
}

func (s *simFS) answer(ch *simChan) {
	if ch.answered {
		return
	}
	ch.answered = true
	s.emit(s.ev("CHANNEL_ANSWER", ch, map[string]string{"Channel-Call-State": "RINGING"}),
		s.ev("CHANNEL_CALLSTATE", ch, callstate("ACTIVE")))
	if o := ch.orig; o != nil && !o.done {
		o.done = true
		s.jobDone(o.job, o.arg, "+OK "+ch.uuid+"\n")
		for _, u := range append([]string(nil), s.created...) {
			if x := s.chans[u]; x != nil && x != ch && x.orig == o {
				s.hangup(x, "LOSE_RACE")
			}
		}
	}
	if ch.app == "park" && !ch.inbound {
		s.emit(s.ev("CHANNEL_PARK", ch, nil))
	}
}

// originate parses "{vars}[origination_uuid=U]endpoint,[…]endpoint &app(arg)".
func (s *simFS) originate(c net.Conn, arg string) {
	s.jobs++
	o := &originateJob{job: fmt.Sprintf("0b0b0b0b-0000-4000-8000-%012d", s.jobs), arg: arg}
	// The Job-UUID is in Reply-Text and again as its own header.
	write(c, "Content-Type: command/reply\nReply-Text: +OK Job-UUID: "+o.job+"\nJob-UUID: "+o.job+"\n\n")
	dial, app, _ := strings.Cut(arg, " ")
	vars, forks, _ := strings.Cut(strings.TrimPrefix(dial, "{"), "}")
	var legs []*simChan
	var eps []string
	for _, fork := range strings.Split(forks, ",") {
		uv, ep, _ := strings.Cut(strings.TrimPrefix(fork, "["), "]")
		ch := &simChan{uuid: strings.TrimPrefix(uv, "origination_uuid="), orig: o, app: "park"}
		for _, kv := range strings.Split(vars, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "park_after_bridge":
				ch.pab = v == "true"
			case "origination_caller_id_number":
				ch.caller = v
			}
		}
		if t, ok := strings.CutPrefix(app, "&eavesdrop("); ok {
			ch.app, ch.target = "eavesdrop", strings.TrimSuffix(t, ")")
		}
		ch.endpoint = ep
		legs, eps = append(legs, ch), append(eps, s.userFork(ep))
	}
	o.forks = len(legs)
	// Every fork's channel is created (and rings) before any answers.
	for i, ch := range legs {
		switch s.behavior[eps[i]] {
		case dialUnregistered: // no channel at all
		case dialBusy:
			s.add(ch)
			s.emit(s.ev("CHANNEL_CREATE", ch, callstate("DOWN")))
		default:
			s.add(ch)
			s.emit(s.ev("CHANNEL_CREATE", ch, callstate("DOWN")), s.ev("CHANNEL_CALLSTATE", ch, callstate("RINGING")))
		}
	}
	for i, ch := range legs {
		switch s.behavior[eps[i]] {
		case dialUnregistered:
			s.forkFailed(o, "USER_NOT_REGISTERED")
		case dialBusy:
			s.hangup(ch, "USER_BUSY")
		case dialAnswer:
			s.answer(ch)
		case dialNoAnswer:
			s.hangup(ch, "NO_ANSWER")
		case dialDecline:
			s.hangup(ch, "CALL_REJECTED")
		}
	}
}

// userFork is what a user/<name>@<domain> fork rings: with several
// registered contacts FreeSWITCH makes one channel per contact, each
// taking the fork's [origination_uuid]; all but the first are refused
// ("Duplicate UUID!", DESTINATION_OUT_OF_ORDER), so only the first
// contact rings, as on a real FreeSWITCH 1.11.1. It returns the
// endpoint whose behaviour applies: that first contact's. Under s.mu.
func (s *simFS) userFork(ep string) string {
	user, ok := strings.CutPrefix(ep, "user/")
	if !ok {
		return ep
	}
	user, _, _ = strings.Cut(user, "@")
	var urls []string
	for _, r := range s.registrations {
		if r["reg_user"] == user {
			urls = append(urls, r["url"])
		}
	}
	if len(urls) < 2 {
		return ep
	}
	sort.Strings(urls)
	s.t.Logf("sim FreeSWITCH: %s forks to %d contacts; Duplicate UUID! for all but %s", ep, len(urls), urls[0])
	return urls[0]
}

// forkFailed counts a failed fork; the last one fails the job.
func (s *simFS) forkFailed(o *originateJob, cause string) {
	if o.done {
		return
	}
	if o.failed++; o.failed == o.forks {
		o.done = true
		s.jobDone(o.job, o.arg, "-ERR "+cause+"\n")
	}
}
