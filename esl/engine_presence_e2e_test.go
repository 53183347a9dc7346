package esl

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
)

// recordedRegistrations are presence.jsonl's CUSTOM frames, byte for
// byte: a3 registers (3600 s), a3 unregisters, a4 registers (5 s), a4's
// registration expires.
func recordedRegistrations(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range loadTranscript(t, "presence.jsonl") {
		if l.Dir == "in" && strings.Contains(l.Raw, "\nEvent-Subclass: sofia%3A%3A") {
			out = append(out, l.Raw)
		}
	}
	if len(out) != 4 {
		t.Fatalf("presence.jsonl: %d registration events, want 4", len(out))
	}
	return out
}

// wantOnline checks an agent's device presence.
func (f *e2e) wantOnline(id string, online bool, until time.Time) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("agent %s online=%v until %v", id, online, until), func() error {
		a, err := f.svc.Agent(f.ctx, id)
		if err != nil {
			return err
		}
		if a.Online != online || !a.DeviceUntil.Equal(until) {
			return fmt.Errorf("online=%v device until %v", a.Online, a.DeviceUntil)
		}
		return nil
	})
}

// TestE2EDevicePresence: registrations from show registrations (on
// reconnect) and from sofia::register / unregister / expire events put
// agents online and offline in presence.
func TestE2EDevicePresence(t *testing.T) {
	f := newE2E(t)
	f.wantOnline("a1", false, time.Time{})
	f.fs.setRegistrations(map[string]string{
		"reg_user": "a1", "realm": "127.0.0.1", "url": "sofia/internal/sip:a1@127.0.0.1:6001",
		"expires": "1795292296", "network_ip": "127.0.0.1", "network_port": "7001", "network_proto": "udp",
	})
	f.disconnect()
	f.reconnect()
	f.wantOnline("a1", true, time.Unix(1795292296, 0))

	ev := recordedRegistrations(t)
	f.fs.emitRecorded(ev[0]) // a3 registers for 3600 s
	f.wantOnline("a3", true, t0.Add(3600*time.Second))
	f.fs.emitRecorded(ev[1]) // a3 unregisters
	f.wantOnline("a3", false, time.Time{})
	f.fs.emitRecorded(ev[2]) // a4 registers for 5 s
	f.wantOnline("a4", true, t0.Add(5*time.Second))
	f.fs.emitRecorded(ev[3]) // sofia::expire ("expires" is an epoch)
	f.wantOnline("a4", false, time.Time{})
	f.wantOnline("a1", true, time.Unix(1795292296, 0))
	f.wantCommands()

	a, err := f.svc.Agent(f.ctx, "a3")
	if err != nil {
		t.Fatal(err)
	}
	if a.SystemStatus != presence.SysAvailable {
		t.Errorf("a device going away changed a3's system status to %s", a.SystemStatus)
	}
}
