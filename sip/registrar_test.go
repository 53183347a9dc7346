package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// sipClient is an in-process SIP client (sipgo) on an ephemeral port.
type sipClient struct {
	cli *sipgo.Client
	h   *harness
}

func newSIPClient(t testing.TB, h *harness) *sipClient {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger())),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger())))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	return &sipClient{cli: cli, h: h}
}

// register builds a REGISTER for user with the given Contact URIs
// ("*" for the wildcard) and Expires header ("" for none).
func (c *sipClient) register(user string, contacts []string, expires string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: c.h.port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}})
	for _, raw := range contacts {
		if raw == "*" {
			req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
			continue
		}
		ch := &sip.ContactHeader{}
		uri, params, _ := strings.Cut(raw, ";")
		if err := sip.ParseUri(uri, &ch.Address); err != nil {
			panic(err)
		}
		if params != "" {
			k, v, _ := strings.Cut(params, "=")
			ch.Params = sip.HeaderParams{{K: k, V: v}}
		}
		req.AppendHeader(ch)
	}
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	return req
}

// do sends req and, when challenged, answers the challenge with
// password.
func (c *sipClient) do(t testing.TB, req *sip.Request, user, password string) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	if res.StatusCode != 401 || password == "" {
		return res
	}
	res, err = c.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
	if err != nil {
		t.Fatalf("%s with digest: %v", req.Method, err)
	}
	return res
}

func challengeOf(t testing.TB, res *sip.Response) *digest.Challenge {
	t.Helper()
	h := res.GetHeader("WWW-Authenticate")
	if h == nil {
		t.Fatalf("%d without WWW-Authenticate", res.StatusCode)
	}
	c, err := digest.ParseChallenge(h.Value())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegisterChallengesWithPerClientNonces(t *testing.T) {
	h := startServer(t, Config{Domain: "floor.test"}, nil)
	c := newSIPClient(t, h)
	r1 := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "3600"), "", "")
	r2 := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "3600"), "", "")
	c1, c2 := challengeOf(t, r1), challengeOf(t, r2)
	if r1.StatusCode != 401 || c1.Realm != "floor.test" || !c1.SupportsQOP("auth") || c1.Algorithm != "MD5" {
		t.Fatalf("challenge %d %+v", r1.StatusCode, c1)
	}
	if c1.Nonce == c2.Nonce {
		t.Fatal("two challenges share a nonce")
	}
}

func TestRegisterBindingsLifecycle(t *testing.T) {
	h := startServer(t, Config{}, nil)
	c := newSIPClient(t, h)

	// Two contacts in one REGISTER; one asks for more than MaxExpires.
	res := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001", "sip:a1@127.0.0.1:7002;expires=99999"}, "120"), "a1", "sip-a1")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	got := map[string]string{}
	for _, hd := range res.GetHeaders("Contact") {
		ch := hd.(*sip.ContactHeader)
		e, _ := ch.Params.Get("expires")
		got[ch.Address.String()] = e
	}
	if got["sip:a1@127.0.0.1:7001"] != "120" || got["sip:a1@127.0.0.1:7002"] != "3600" {
		t.Fatalf("granted %v, want 120 and clamped 3600", got)
	}
	if n := len(h.srv.Contacts("a1")); n != 2 {
		t.Fatalf("Contacts = %d", n)
	}

	// Expires: 0 for one contact: the other keeps the agent registered.
	res = c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "0"), "a1", "sip-a1")
	if res.StatusCode != 200 || len(h.srv.Contacts("a1")) != 1 {
		t.Fatalf("unregister one: %d %v", res.StatusCode, h.srv.Contacts("a1"))
	}
	h.rec.waitFor(t, "7001 gone, still registered", time.Second, func(f media.Fact) bool {
		d, ok := f.(media.DeviceState)
		return ok && d.Device == "sip:a1@127.0.0.1:7001" && d.Registered
	})

	// Wildcard without Expires: 0 is refused; with it, all go.
	if res := c.do(t, c.register("a1", []string{"*"}, "60"), "a1", "sip-a1"); res.StatusCode != 400 {
		t.Fatalf("wildcard with Expires 60: %d", res.StatusCode)
	}
	if res := c.do(t, c.register("a1", []string{"*"}, "0"), "a1", "sip-a1"); res.StatusCode != 200 {
		t.Fatalf("wildcard: %d", res.StatusCode)
	}
	if n := len(h.srv.Contacts("a1")); n != 0 {
		t.Fatalf("Contacts after * = %d", n)
	}
	h.rec.waitFor(t, "a1 offline", time.Second, deviceState("a1", false))
}

func TestRegisterIntervalTooBrief(t *testing.T) {
	h := startServer(t, Config{MinExpires: time.Minute}, nil)
	c := newSIPClient(t, h)
	res := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001;expires=10"}, ""), "a1", "sip-a1")
	if res.StatusCode != 423 {
		t.Fatalf("status %d, want 423", res.StatusCode)
	}
	if mh := res.GetHeader("Min-Expires"); mh == nil || mh.Value() != "60" {
		t.Fatalf("Min-Expires = %v", mh)
	}
}

func TestRegisterExpiresBySweep(t *testing.T) {
	h := startServer(t, Config{}, nil)
	c := newSIPClient(t, h)
	if res := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "60"), "a1", "sip-a1"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	h.rec.waitFor(t, "registered", time.Second, deviceState("a1", true))
	h.clock.advance(61 * time.Second)
	f := h.rec.waitFor(t, "expired", 2*time.Second, deviceState("a1", false)).(media.DeviceState)
	if !f.Until.IsZero() {
		t.Errorf("Until = %s on an expired device", f.Until)
	}
}

func TestRegisterStaleNonce(t *testing.T) {
	h := startServer(t, Config{}, nil, WithNonceTTL(time.Minute))
	c := newSIPClient(t, h)
	req := c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "60")
	ctx := context.Background()
	res, err := c.cli.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("first: %v %v", res, err)
	}
	h.clock.advance(2 * time.Minute) // the nonce expires before we answer it
	res, err = c.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "a1", Password: "sip-a1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || !challengeOf(t, res).Stale {
		t.Fatalf("status %d stale=%v, want 401 stale=true", res.StatusCode, res.GetHeader("WWW-Authenticate"))
	}
	// Answering the fresh challenge works.
	res, err = c.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "a1", Password: "sip-a1"})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("retry: %v %v", res, err)
	}
}

func TestRegisterRefusals(t *testing.T) {
	h := startServer(t, Config{}, nil, WithMaxAuthFailures(2))
	c := newSIPClient(t, h)
	// Credentials of another user for a1's AOR.
	if res := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "60"), "a2", "sip-a2"); res.StatusCode != 403 {
		t.Fatalf("foreign credentials: %d", res.StatusCode)
	}
	// Wrong password: 401, then 403 once the failures add up.
	var codes []int
	for i := 0; i < 3; i++ {
		codes = append(codes, c.do(t, c.register("a3", []string{"sip:a3@127.0.0.1:7001"}, "60"), "a3", "wrong").StatusCode)
	}
	if codes[0] != 401 || codes[1] != 403 || codes[2] != 403 {
		t.Fatalf("wrong password codes %v, want [401 403 403]", codes)
	}
	// Unknown user counts as a wrong password.
	if res := c.do(t, c.register("nobody", []string{"sip:n@127.0.0.1:7001"}, "60"), "nobody", "x"); res.StatusCode != 401 {
		t.Fatalf("unknown user: %d", res.StatusCode)
	}
	if n := len(h.srv.Contacts("a3")); n != 0 {
		t.Fatalf("refused user has contacts")
	}
}

func TestAuthenticatorBindsNonceToClient(t *testing.T) {
	clk := &testClock{}
	a := newAuthenticator("r", time.Minute, 3, clk.now)
	hdr := a.challenge("10.0.0.1", false)
	chal, err := digest.ParseChallenge(hdr)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:r", Username: "a1", Password: "sip-a1", Count: 1})
	pw := demoDir{}.Password
	v, _, _, _ := a.verify(context.Background(), "REGISTER", cred.String(), "10.0.0.2:5060", "a1", pw)
	if v != authChallenge {
		t.Fatalf("nonce of another client: verdict %d", v)
	}
	v, _, _, _ = a.verify(context.Background(), "REGISTER", cred.String(), "10.0.0.1:5060", "a1", pw)
	if v != authOK {
		t.Fatalf("own nonce: verdict %d", v)
	}
	// The same nonce count again is a replay.
	v, stale, _, _ := a.verify(context.Background(), "REGISTER", cred.String(), "10.0.0.1:5060", "a1", pw)
	if v != authChallenge || !stale {
		t.Fatalf("replay: verdict %d stale %v", v, stale)
	}
	// Sweep forgets old nonces and failure counts.
	clk.advance(time.Hour)
	a.sweep(clk.now())
	if len(a.nonces) != 0 {
		t.Fatalf("%d nonces after sweep", len(a.nonces))
	}
}

func TestDirectoryErrorIs500(t *testing.T) {
	h := startServerWith(t, Config{}, failingDir{}, nil)
	c := newSIPClient(t, h)
	if res := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "60"), "a1", "sip-a1"); res.StatusCode != 500 {
		t.Fatalf("status %d, want 500", res.StatusCode)
	}
}

type failingDir struct{}

func (failingDir) Password(context.Context, string) (string, bool, error) {
	return "", false, errors.New("directory down")
}
