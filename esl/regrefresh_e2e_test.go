package esl

import (
	"strings"
	"testing"
	"time"
)

// registerReplace reads register-replace.jsonl, recorded on a real
// FreeSWITCH 1.11.1 whose internal profile has the stock (single)
// registration mode: a5 registers from :6205, then from :6206 (which
// deletes :6205), then unregisters with "Contact: *" (which deletes all;
// the event names contact `"" <sip:(null)@(null)>`). After each step the
// recorder read show registrations as json. It returns the three sofia
// events and, for each, the table as it stood after it.
func registerReplace(t *testing.T) (events []string, tables [][]map[string]string) {
	t.Helper()
	var replies [][]map[string]string
	for _, l := range loadTranscript(t, "register-replace.jsonl") {
		switch {
		case l.Dir != "in":
		case strings.Contains(l.Raw, "\nEvent-Subclass: sofia%3A%3A"):
			events = append(events, l.Raw)
		case strings.HasPrefix(l.Raw, "Content-Type: api/response\n"):
			_, body, _ := strings.Cut(l.Raw, "\n\n")
			rows, err := parseRows([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			replies = append(replies, rows)
		}
	}
	if len(events) != 3 || len(replies) != 4 {
		t.Fatalf("register-replace.jsonl: %d events, %d replies; want 3 and 4", len(events), len(replies))
	}
	return events, replies[1:] // replies[0] was taken before a5 registered
}

// TestE2ERegistrationReplacedAndWildcardUnregister: FreeSWITCH drops
// contacts its events do not name, so an agent left with contacts we
// track but FreeSWITCH dropped must be checked against show registrations
// — and go offline when the table says so.
func TestE2ERegistrationReplacedAndWildcardUnregister(t *testing.T) {
	events, tables := registerReplace(t)
	f := newE2E(t)
	until := t0.Add(3600 * time.Second)

	f.fs.emitRecorded(events[0]) // a5 from :6205, its only contact
	f.fs.setRegistrations(tables[0]...)
	f.wantOnline("a5", true, until)
	f.wantCommands()

	// The table lags the events: at each event it still shows the
	// previous state, and catches up shortly after.
	f.fs.emitRecorded(events[1]) // a5 from :6206; FreeSWITCH drops :6205
	f.fs.setRegistrations(tables[1]...)
	f.wantOnline("a5", true, until)
	f.wantCommands("api show registrations as json")

	f.fs.emitRecorded(events[2]) // Contact: * — FreeSWITCH drops :6206 too
	f.fs.setRegistrations(tables[2]...)
	f.wantOnline("a5", false, time.Time{})
	f.wantCommands("api show registrations as json")
	f.wantOnline("a1", true, time.Unix(1795299732, 0)) // listed by the table alone
}

// TestE2EUnregisterDuringRefreshWait: the Contact: * unregister comes
// while the refresh the re-register asked for is still waiting for the
// table; the table must then be read again for it, with the re-register
// no longer younger than the read.
func TestE2EUnregisterDuringRefreshWait(t *testing.T) {
	events, tables := registerReplace(t)
	f := newE2E(t)
	f.fs.setRegistrations(tables[2]...) // what the table says in the end
	for _, ev := range events {
		f.fs.emitRecorded(ev)
	}
	f.fs.waitCommands(1) // the events were applied (a5 was online): a refresh is out
	f.wantOnline("a5", false, time.Time{})
	f.settle()
	got := f.fs.takeCommands()
	if len(got) == 0 || len(got) > 2 {
		t.Fatalf("ESL commands: %q; want one or two show registrations", got)
	}
	for _, c := range got {
		if c != "api show registrations as json" {
			t.Fatalf("ESL commands: %q; want only show registrations", got)
		}
	}
}
