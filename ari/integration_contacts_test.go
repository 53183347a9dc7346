package ari

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// sippRegister registers (expires > 0) or removes (0) a1's contact at
// 127.0.0.1:<port> on the real Asterisk, as a softphone would.
func sippRegister(t *testing.T, sipp string, port, expires int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "127.0.0.1:5060", "-sf", "testdata/register-digest.xml",
		"-s", "a1", "-au", "a1", "-ap", "sip-a1", "-set", "expires", strconv.Itoa(expires),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1", "-timeout", "10", "-timeout_error", "-nostdin")
	cmd.Dir = "."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sipp REGISTER a1 from :%d expires %d: %v\n%s", port, expires, err, out)
	}
}

// freeUDPPort finds a loopback UDP port nobody uses.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestAsteriskDeviceStateAndContacts: with a1's device state subscribed,
// a softphone registering makes a1 registered (DeviceStateChanged from
// UNAVAILABLE), a second softphone makes a dial ring both contacts (read
// as PJSIP_DIAL_CONTACTS through the caller's channel), and both
// unregistering makes a1 unregistered. Needs sipp and asterisk-conf's a1.
func TestAsteriskDeviceStateAndContacts(t *testing.T) {
	cfg := realConfig(t)
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed")
	}
	devs := &deviceList{}
	devs.set(nil, "a1")
	cfg.Devices = devs.list
	l := startReal(t, cfg, WithContactsMaxAge(0))
	c, ctx := l.c, l.ctx

	web, mobile := freeUDPPort(t), freeUDPPort(t)
	t.Cleanup(func() { sippRegister(t, sipp, web, 0); sippRegister(t, sipp, mobile, 0) })
	registered := func(want bool) {
		t.Helper()
		l.await(t, "a1 registered="+strconv.FormatBool(want), func(f media.Fact) bool {
			d, ok := f.(media.DeviceState)
			return ok && d.Device == "PJSIP/a1" && d.Registered == want
		})
	}
	sippRegister(t, sipp, web, 120)
	registered(true)
	sippRegister(t, sipp, mobile, 120)

	cust := l.inject(t)
	want := []string{"PJSIP/a1/sip:a1@127.0.0.1:" + strconv.Itoa(web), "PJSIP/a1/sip:a1@127.0.0.1:" + strconv.Itoa(mobile)}
	slices.Sort(want)
	if got := c.contactForks(ctx, "a1", string(cust)); !slices.Equal(got, want) {
		t.Fatalf("a1 dialled as %q, want %q", got, want)
	}
	must(t, c.Hangup(ctx, cust, media.CauseNormal))
	l.ended(t, cust)

	sippRegister(t, sipp, web, 0)
	sippRegister(t, sipp, mobile, 0)
	registered(false)
}
