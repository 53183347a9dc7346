package sip

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
)

func deviceState(agent string, registered bool) func(media.Fact) bool {
	return func(f media.Fact) bool {
		d, ok := f.(media.DeviceState)
		return ok && d.AgentID == agent && d.Registered == registered
	}
}

// A real device registers with digest auth, then unregisters (Expires 0).
func TestSippRegisterWithDigest(t *testing.T) {
	h := startServer(t, Config{}, nil)
	port := testpeer.FreeUDPPort(t)
	h.register(t, "a1", port)

	f := h.rec.waitFor(t, "a1 registered", 5*time.Second, deviceState("a1", true)).(media.DeviceState)
	if f.Until.Sub(time.Now()) < 50*time.Minute {
		t.Errorf("Until = %s, want about an hour ahead", f.Until)
	}
	if got := h.srv.Contacts("a1"); len(got) != 1 {
		t.Fatalf("Contacts(a1) = %v, want one", got)
	}

	h.unregister(t, "a1", port)
	h.rec.waitFor(t, "a1 unregistered", 5*time.Second, deviceState("a1", false))
	if got := h.srv.Contacts("a1"); len(got) != 0 {
		t.Fatalf("Contacts(a1) after unregister = %v", got)
	}
}

// A wrong password is challenged twice more, then refused with 403.
func TestSippRegisterWrongPassword(t *testing.T) {
	h := startServer(t, Config{}, nil)
	p := startSipp(t, "register wrong", testpeer.FreeUDPPort(t), h.addr, "-sf", scenario("register_wrong.xml"), "-m", "1",
		"-au", "a1", "-ap", "not-the-password", "-key", "user", "a1")
	p.wait(t, 20*time.Second)
	for _, f := range h.rec.all() {
		if _, ok := f.(media.DeviceState); ok {
			t.Fatalf("unexpected %+v", f)
		}
	}
	if got := h.srv.Contacts("a1"); len(got) != 0 {
		t.Fatalf("Contacts(a1) = %v", got)
	}
}

// A registration that is not refreshed expires and the device goes
// offline.
func TestSippRegistrationExpires(t *testing.T) {
	h := startServer(t, Config{MinExpires: time.Second}, nil)
	p := startSipp(t, "register short", testpeer.FreeUDPPort(t), h.addr, "-sf", scenario("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "1")
	p.wait(t, 20*time.Second)
	h.rec.waitFor(t, "a1 registered", 5*time.Second, deviceState("a1", true))
	h.rec.waitFor(t, "a1 expired", 5*time.Second, deviceState("a1", false))
	if got := h.srv.Contacts("a1"); len(got) != 0 {
		t.Fatalf("Contacts(a1) after expiry = %v", got)
	}
}
