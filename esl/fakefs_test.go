package esl

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is an in-process fake FreeSWITCH. It speaks the real ESL wire
// format by replaying transcripts recorded from FreeSWITCH 1.11.1
// (testdata/*.jsonl, described in testdata/TRANSCRIPTS.md): every frame
// it sends is a recorded frame, byte for byte, in recorded order, except
// replies to commands the recording did not contain, which are built with
// FreeSWITCH's exact framing (api/response: Content-Type, then
// Content-Length, then the body).
//
// A test scripts each connection as the list of commands callfloor must
// send, each either "slot i" (the recording's i-th command on that
// connection: its recorded reply is replayed where it was recorded) or an
// extra (not in the recording: the given reply is sent at once).
// Recorded commands no step claims are dropped with their replies. The
// fake checks every command against the script (exact text) as it reads
// it, and frames between two commands are only sent once the earlier
// command has arrived, as on the real socket.

type recLine struct {
	T    int    `json:"t_ms"`
	Dir  string `json:"dir"`
	Raw  string `json:"raw"`
	Conn int    `json:"conn"`
}

func loadTranscript(t testing.TB, name string) []recLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}
	var out []recLine
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var l recLine
		if err := json.Unmarshal([]byte(ln), &l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, l)
	}
	return out
}

// step is one command callfloor must send on a scripted connection.
type step struct {
	slot  int    // recorded command whose reply is replayed; -1 for an extra
	want  string // exact command, without the terminating blank line
	reply string // extra: the raw reply frame
	// after: an extra goes right after the previous step's reply instead
	// of right before the next recorded command.
	after bool
}

func rec(slot int, want string) step { return step{slot: slot, want: want} }

// extra is a command the recording lacks, answered with reply.
func extra(want, reply string) step { return step{slot: -1, want: want, reply: reply} }

// apiResponse frames an api/response exactly as FreeSWITCH does.
func apiResponse(body string) string {
	return fmt.Sprintf("Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body)
}

const emptyRows = "{\"row_count\": 0}\n"

// emptyResync is the resync of a connection to an idle FreeSWITCH.
func emptyResync() []step {
	return []step{
		{slot: -1, want: "api show channels as json", reply: apiResponse(emptyRows), after: true},
		{slot: -1, want: "api show calls as json", reply: apiResponse(emptyRows), after: true},
		{slot: -1, want: "api show registrations as json", reply: apiResponse(emptyRows), after: true},
	}
}

// action is one thing the fake does on a connection.
type action struct {
	send   string // write this frame
	expect string // or read a command and compare
	reply  string // after expect: write this reply (extras)
}

// connScript is a whole connection.
type connScript struct {
	name    string
	actions []action
	// hangUp closes the socket after the last action (an abrupt drop);
	// otherwise the fake stays silent until the client leaves.
	hangUp bool
}

// script builds the replay of connection conn of a transcript.
func script(t testing.TB, name string, lines []recLine, conn int, steps []step) *connScript {
	t.Helper()
	var mine []recLine
	for _, l := range lines {
		if l.Conn == conn {
			mine = append(mine, l)
		}
	}
	// Pair each recorded command with its reply: replies come in order.
	replyOf := map[int]int{} // out slot → line index
	slotAt := map[int]int{}  // line index → out slot
	var waiting []int
	slot := 0
	for i, l := range mine {
		if l.Dir == "out" {
			slotAt[i] = slot
			waiting = append(waiting, slot)
			slot++
			continue
		}
		if ct := contentTypeOf(l.Raw); (ct == typeReply || ct == typeAPIResponse) && len(waiting) > 0 {
			replyOf[waiting[0]] = i
			waiting = waiting[1:]
		}
	}
	used := map[int]int{} // slot → step index
	last := -1
	for i, s := range steps {
		if s.slot < 0 {
			continue
		}
		if s.slot <= last || s.slot >= slot {
			t.Fatalf("%s: step %d: slot %d out of order or range", name, i, s.slot)
		}
		last = s.slot
		used[s.slot] = i
	}
	dropped := map[int]bool{}
	for s, li := range replyOf {
		if _, ok := used[s]; !ok {
			dropped[li] = true
		}
	}
	// Anchors for extras: before the next recorded step's command, or
	// after the previous step's reply.
	before := map[int][]step{} // step index of a recorded step → extras before it
	afterReply := map[int][]step{}
	var tail []step
	for i, s := range steps {
		if s.slot >= 0 {
			continue
		}
		if s.after {
			j := i - 1
			for j >= 0 && steps[j].slot < 0 {
				j--
			}
			if j < 0 {
				t.Fatalf("%s: extra %q has no step before it", name, s.want)
			}
			afterReply[j] = append(afterReply[j], s)
			continue
		}
		j := i + 1
		for j < len(steps) && steps[j].slot < 0 {
			j++
		}
		if j == len(steps) {
			tail = append(tail, s)
			continue
		}
		before[j] = append(before[j], s)
	}
	cs := &connScript{name: name}
	addExtras := func(ss []step) {
		for _, s := range ss {
			cs.actions = append(cs.actions, action{expect: s.want, reply: s.reply})
		}
	}
	replyStep := map[int]int{} // line index → step index whose reply it is
	for s, li := range replyOf {
		if st, ok := used[s]; ok {
			replyStep[li] = st
		}
	}
	for i, l := range mine {
		if l.Dir == "out" {
			st, ok := used[slotAt[i]]
			if !ok {
				continue
			}
			addExtras(before[st])
			cs.actions = append(cs.actions, action{expect: steps[st].want})
			continue
		}
		if dropped[i] {
			continue
		}
		cs.actions = append(cs.actions, action{send: l.Raw})
		if st, ok := replyStep[i]; ok {
			addExtras(afterReply[st])
		}
	}
	addExtras(tail)
	return cs
}

func contentTypeOf(raw string) string {
	for _, h := range strings.Split(raw, "\n") {
		if v, ok := strings.CutPrefix(h, "Content-Type: "); ok {
			return v
		}
		if h == "" {
			break
		}
	}
	return ""
}

// fakeFS serves scripted connections, one script per accepted connection.
type fakeFS struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	scripts []*connScript
	got     []string    // every command received, in order
	done    chan string // a script's name when it has been played out
	conns   []net.Conn  // to close at the end
	closing bool
}

func newFakeFS(t testing.TB, scripts ...*connScript) *fakeFS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFS{t: t, ln: ln, scripts: scripts, done: make(chan string, 16)}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeFS) addr() string { return f.ln.Addr().String() }

func (f *fakeFS) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns = append(f.conns, c)
		var s *connScript
		if len(f.scripts) > 0 {
			s, f.scripts = f.scripts[0], f.scripts[1:]
		}
		f.mu.Unlock()
		if s == nil {
			c.Close() // no more FreeSWITCH: the client keeps retrying
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.play(c, s)
		}()
	}
}

// play runs one connection's script.
func (f *fakeFS) play(c net.Conn, s *connScript) {
	defer c.Close()
	br := bufio.NewReader(c)
	for i, a := range s.actions {
		if a.send != "" {
			if _, err := io.WriteString(c, a.send); err != nil {
				f.t.Errorf("%s: action %d: write: %v", s.name, i, err)
				return
			}
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		cmd, err := readCommand(br)
		if err != nil {
			f.t.Errorf("%s: action %d: waiting for %q: %v", s.name, i, a.expect, err)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, cmd)
		f.mu.Unlock()
		if cmd != a.expect {
			f.t.Errorf("%s: action %d: command\n got: %q\nwant: %q", s.name, i, cmd, a.expect)
		}
		if a.reply != "" {
			if _, err := io.WriteString(c, a.reply); err != nil {
				f.t.Errorf("%s: action %d: write reply: %v", s.name, i, err)
				return
			}
		}
	}
	f.done <- s.name
	if s.hangUp {
		return
	}
	// Played out: stay connected and silent; any further command is a
	// test failure.
	_ = c.SetReadDeadline(time.Time{})
	for {
		cmd, err := readCommand(br)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.got = append(f.got, cmd)
		closing := f.closing
		f.mu.Unlock()
		if !closing {
			f.t.Errorf("%s: unexpected command after the script: %q", s.name, cmd)
		}
	}
}

// readCommand reads one ESL command: lines up to a blank line.
func readCommand(br *bufio.Reader) (string, error) {
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if len(lines) > 0 || l != "" {
				return "", fmt.Errorf("command cut short: %w", err)
			}
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			if len(lines) == 0 {
				continue
			}
			return strings.Join(lines, "\n"), nil
		}
		lines = append(lines, l)
	}
}

// waitPlayed waits until the named script has been played out.
func (f *fakeFS) waitPlayed(name string) {
	f.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case n := <-f.done:
			if n == name {
				return
			}
		case <-timeout:
			f.t.Fatalf("fake FreeSWITCH: script %s not played out", name)
		}
	}
}

func (f *fakeFS) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func (f *fakeFS) close() {
	f.mu.Lock()
	f.closing = true
	conns := f.conns
	f.mu.Unlock()
	f.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	f.wg.Wait()
}

// waitCommand waits until the fake has received cmd n times in all.
func (f *fakeFS) waitCommand(cmd string, n int) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := 0
		for _, c := range f.commands() {
			if c == cmd {
				seen++
			}
		}
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("fake FreeSWITCH never got %q ×%d", cmd, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
