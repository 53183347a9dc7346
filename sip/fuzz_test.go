package sip

import (
	"strings"
	"sync"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo/sip"
)

// fakeTx is a sip.ServerTransaction that records responses; it is done
// at the first final response.
type fakeTx struct {
	mu        sync.Mutex
	responses []*sip.Response
	done      chan struct{}
	acks      chan *sip.Request
	closed    bool
}

func newFakeTx() *fakeTx {
	return &fakeTx{done: make(chan struct{}), acks: make(chan *sip.Request)}
}

func (f *fakeTx) Respond(res *sip.Response) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responses = append(f.responses, res)
	if res.StatusCode >= 200 && !f.closed {
		f.closed = true
		close(f.done)
	}
	return nil
}

func (f *fakeTx) codes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, r := range f.responses {
		out = append(out, r.StatusCode)
	}
	return out
}

func (f *fakeTx) Acks() <-chan *sip.Request          { return f.acks }
func (f *fakeTx) OnCancel(sip.FnTxCancel) bool       { return true }
func (f *fakeTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (f *fakeTx) Done() <-chan struct{}              { return f.done }
func (f *fakeTx) Err() error                         { return nil }
func (f *fakeTx) Terminate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

// discard is a media.Facts that drops everything.
type discard struct{}

func (discard) Report(media.Fact) {}

// newIdleServer is a Server that is built but not running, with its
// background context already ended: handlers run to completion without
// network I/O of their own.
func newIdleServer(t testing.TB, facts media.Facts) *Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:5999", MinExpires: 1}, demoDir{}, facts, WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	s.baseCancel()
	t.Cleanup(func() { s.ua.Close() })
	return s
}

var fuzzSeeds = []string{
	"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\nFrom: <sip:a1@127.0.0.1>;tag=1\r\nTo: <sip:a1@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:a1@127.0.0.1:5099>;expires=60\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
	"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\nFrom: <sip:a1@127.0.0.1>;tag=1\r\nTo: <sip:a1@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nAuthorization: Digest username=\"a1\", realm=\"127.0.0.1\", nonce=\"abc\", uri=\"sip:127.0.0.1\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK2\r\nFrom: \"C\" <sip:+49301@127.0.0.1>;tag=2\r\nTo: <sip:800@127.0.0.1>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5099>\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=x\r\n",
	"INVITE sip:800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK3\r\nFrom: <sip:c@127.0.0.1>;tag=2\r\nTo: <sip:800@127.0.0.1>;tag=9\r\nCall-ID: c2\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
	"BYE sip:callfloor@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK4\r\nFrom: <sip:c@127.0.0.1>;tag=2\r\nTo: <sip:800@127.0.0.1>;tag=9\r\nCall-ID: c2\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
	"ACK sip:callfloor@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK5\r\nFrom: <sip:c@127.0.0.1>;tag=2\r\nTo: <sip:800@127.0.0.1>;tag=9\r\nCall-ID: c2\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK6\r\nFrom: <sip:c@127.0.0.1>;tag=2\r\nTo: <sip:127.0.0.1>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"CANCEL sip:800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK7\r\nFrom: <sip:c@127.0.0.1>;tag=2\r\nTo: <sip:800@127.0.0.1>\r\nCall-ID: c9\r\nCSeq: 1 CANCEL\r\nContent-Length: 999999999\r\n\r\n",
	"SUBSCRIBE sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK8\r\nFrom: <sip:c@127.0.0.1>;tag=2\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c3\r\nCSeq: 1 INVITE\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n",
}

// FuzzHandleRequest feeds arbitrary bytes through sipgo's parser into the
// request handlers: nothing may panic or block, and every request but ACK
// gets exactly one final response.
func FuzzHandleRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	s := newIdleServer(f, discard{})
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.1:5099")
		tx := newFakeTx()
		s.handleRequest(req, tx)
		if req.IsAck() {
			return
		}
		finals := 0
		for _, c := range tx.codes() {
			if c >= 200 {
				finals++
			}
		}
		if finals != 1 {
			t.Fatalf("%s got responses %v, want exactly one final", req.Method, tx.codes())
		}
	})
}

// Malformed requests are refused with the right status, not crashed on.
func TestMalformedRequestsRejected(t *testing.T) {
	s := newIdleServer(t, discard{})
	base := "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKm\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n"
	cases := []struct {
		name, msg string
		want      int
	}{
		{"missing Call-ID", "OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + base + "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 400},
		{"CSeq method mismatch", "OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + base + "Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", 400},
		{"no From tag on INVITE", "INVITE sip:800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKm\r\nFrom: <sip:a@127.0.0.1>\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", 400},
		{"Max-Forwards 0", "OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + base + "Call-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n", 483},
		{"INVITE without Contact", "INVITE sip:800@127.0.0.1 SIP/2.0\r\n" + base + "Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", 400},
		{"unknown method", "PUBLISH sip:127.0.0.1 SIP/2.0\r\n" + base + "Call-ID: x\r\nCSeq: 1 PUBLISH\r\nContent-Length: 0\r\n\r\n", 405},
		{"BYE outside a dialog", "BYE sip:127.0.0.1 SIP/2.0\r\n" + base + "Call-ID: nope\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n", 481},
		{"bad Expires", "REGISTER sip:127.0.0.1 SIP/2.0\r\n" + strings.Replace(base, "b@", "a1@", 1) + "Call-ID: x\r\nCSeq: 1 REGISTER\r\nExpires: soon\r\nContent-Length: 0\r\n\r\n", 401},
	}
	parser := sip.NewParser()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := parser.ParseSIP([]byte(c.msg))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			req := msg.(*sip.Request)
			req.SetSource("127.0.0.1:5099")
			tx := newFakeTx()
			s.handleRequest(req, tx)
			codes := tx.codes()
			if len(codes) == 0 || codes[len(codes)-1] != c.want {
				t.Fatalf("responses %v, want final %d", codes, c.want)
			}
		})
	}
	// A huge Content-Length never reaches the handlers: sipgo's parser
	// refuses the message.
	huge := "OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + base + "Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4294967295\r\n\r\n"
	if _, err := parser.ParseSIP([]byte(huge)); err == nil {
		t.Fatal("huge Content-Length parsed")
	}
}
