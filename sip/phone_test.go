package sip

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/internal/rtpphone"
	"github.com/callfloor/callfloor/rtpanchor"
)

// goPhone is a SIP phone for the media tests: sipgo for signalling
// (REGISTER with digest, answering INVITEs, calling in as a trunk) and an
// rtpphone for audio (its own tone out, everything it hears recorded).
type goPhone struct {
	t     testing.TB
	user  string
	port  int
	rtp   *rtpphone.Phone
	ua    *sipgo.UserAgent
	cli   *sipgo.Client
	srv   *sipgo.Server
	dsrv  *sipgo.DialogServerCache
	dcli  *sipgo.DialogClientCache
	conn  net.PacketConn
	done  chan struct{}
	mu    sync.Mutex
	inbox []*sipgo.DialogServerSession // answered INVITEs
	byes  int                          // BYEs received
	call  *sipgo.DialogClientSession   // our outgoing call
	acked chan struct{}                // closed once our call is answered and ACKed
	res   []int                        // status codes our call received
	// noAnswer makes the phone ring without answering.
	noAnswer atomic.Bool
	// answerDelay: the phone rings this long before it answers.
	answerDelay time.Duration
	// reinvites counts in-dialog INVITEs received (refused with 488).
	reinvites atomic.Int32
	// lateAnswer makes dial send a late offer (an INVITE without SDP):
	// the ACK of the 2xx carries lateAnswer(callfloor's offer), no body
	// when it returns nil.
	lateAnswer func(offer []byte) []byte
}

// newGoPhone starts a phone on a free loopback UDP port that sends freq
// Hz in codec.
func newGoPhone(t testing.TB, user string, freq float64, codec rtpanchor.Codec) *goPhone {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &goPhone{t: t, user: user, port: conn.LocalAddr().(*net.UDPAddr).Port, conn: conn, done: make(chan struct{}),
		rtp: rtpphone.New(t, freq, uint8(codec), 101)}
	p.ua, err = sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger())),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger())))
	if err != nil {
		t.Fatal(err)
	}
	p.cli, err = sipgo.NewClient(p.ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(p.port), sipgo.WithClientLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: p.port}}
	p.dsrv = sipgo.NewDialogServerCache(p.cli, contact)
	p.dcli = sipgo.NewDialogClientCache(p.cli, contact)
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dsrv.ReadAck(req, tx) })
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		p.byes++
		p.mu.Unlock()
		if p.dsrv.ReadBye(req, tx) == nil {
			return
		}
		if p.dcli.ReadBye(req, tx) == nil {
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
	})
	go func() {
		defer close(p.done)
		_ = p.srv.ServeUDP(conn)
	}()
	t.Cleanup(p.close)
	return p
}

func (p *goPhone) close() {
	select {
	case <-p.done:
		return
	default:
	}
	p.rtp.Close()
	p.ua.Close()
	p.conn.Close()
	<-p.done
}

// sdp is the phone's description: its RTP address, its one codec.
func (p *goPhone) sdp() []byte {
	b, err := rtpanchor.WriteSDP(rtpanchor.SDPParams{Addr: p.rtp.Addr(), SessionID: 1, Version: 1,
		Codecs: []rtpanchor.Codec{rtpanchor.Codec(p.rtp.Codec)}, EventPT: p.rtp.EventPT})
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// follow points the phone's RTP at the address an SDP names.
func (p *goPhone) follow(body []byte) {
	d, err := rtpanchor.ParseSDP(body)
	if err != nil {
		p.t.Errorf("phone %s: SDP from callfloor: %v\n%s", p.user, err, body)
		return
	}
	p.rtp.SendTo(d.Addr)
}

func (p *goPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if tagOf(req.To().Params) != "" {
		// A re-INVITE: the anchored path must never need one.
		p.reinvites.Add(1)
		p.t.Errorf("phone %s got a re-INVITE", p.user)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Here", nil))
		return
	}
	dlg, err := p.dsrv.ReadInvite(req, tx)
	if err != nil {
		p.t.Errorf("phone %s: %v", p.user, err)
		return
	}
	_ = dlg.Respond(180, "Ringing", nil)
	if p.noAnswer.Load() {
		return
	}
	if p.answerDelay > 0 {
		select { // a phone ringing, not a timing assumption
		case <-time.After(p.answerDelay):
		case <-dlg.Context().Done():
			return
		}
	}
	p.follow(req.Body())
	if err := dlg.RespondSDP(p.sdp()); err != nil {
		p.t.Errorf("phone %s answer: %v", p.user, err)
		return
	}
	p.mu.Lock()
	p.inbox = append(p.inbox, dlg)
	p.mu.Unlock()
}

// register binds the phone's contact to its user, with the demo password.
func (p *goPhone) register(h *harness) {
	p.t.Helper()
	c := newSIPClient(p.t, h)
	res := c.do(p.t, c.register(p.user, []string{"sip:" + p.user + "@127.0.0.1:" + strconv.Itoa(p.port)}, "3600"), p.user, "sip-"+p.user)
	if res.StatusCode != 200 {
		p.t.Fatalf("REGISTER %s: %d", p.user, res.StatusCode)
	}
}

// dial calls hotline at callfloor as a trunk would (loopback is a trunk
// source) and follows the SDP of the 183 and the 200. It returns at once;
// the answer is awaited in the background.
func (p *goPhone) dial(h *harness, hotline string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ct := sip.ContentTypeHeader("application/sdp")
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: "127.0.0.1"}}
	from.Params.Add("tag", sip.GenerateTagN(8))
	to := sip.Uri{Scheme: "sip", User: hotline, Host: "127.0.0.1", Port: h.port}
	var (
		call *sipgo.DialogClientSession
		err  error
	)
	if p.lateAnswer != nil {
		call, err = p.dcli.Invite(ctx, to, nil, from)
	} else {
		call, err = p.dcli.Invite(ctx, to, p.sdp(), &ct, from)
	}
	if err != nil {
		p.t.Fatalf("INVITE: %v", err)
	}
	acked := make(chan struct{})
	p.mu.Lock()
	p.call, p.acked = call, acked
	p.mu.Unlock()
	go func() {
		wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer wcancel()
		err := call.WaitAnswer(wctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
			p.mu.Lock()
			p.res = append(p.res, res.StatusCode)
			p.mu.Unlock()
			if len(res.Body()) > 0 && (res.StatusCode == 183 || res.IsSuccess()) {
				p.follow(res.Body())
			}
			return nil
		}})
		if err != nil {
			return
		}
		if p.lateAnswer == nil {
			_ = call.Ack(wctx)
		} else {
			res := call.InviteResponse
			target := call.InviteRequest.Recipient
			if c := res.Contact(); c != nil {
				target = c.Address
			}
			ack := sip.NewRequest(sip.ACK, *target.Clone())
			if body := p.lateAnswer(res.Body()); body != nil {
				ack.AppendHeader(&ct)
				ack.SetBody(body)
			}
			_ = call.WriteAck(wctx, ack)
		}
		close(acked)
	}()
}

// statuses is what our call has received so far.
func (p *goPhone) statuses() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.res...)
}

// waitStatus waits until our call received code.
func (p *goPhone) waitStatus(code int) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range p.statuses() {
			if c == code {
				return
			}
		}
		time.Sleep(10 * time.Millisecond) // polling a SIP exchange, not asserting a duration
	}
	p.t.Fatalf("phone %s: no %d (got %v)", p.user, code, p.statuses())
}

// reinvite sends an in-dialog INVITE on our call with sdp and returns
// callfloor's answer.
func (p *goPhone) reinvite(body []byte) *sip.Response {
	p.t.Helper()
	p.mu.Lock()
	call, acked := p.call, p.acked
	p.mu.Unlock()
	select { // the dialog is ours alone once the answer is ACKed
	case <-acked:
	case <-time.After(10 * time.Second):
		p.t.Fatal("re-INVITE: the call was never answered")
	}
	req := sip.NewRequest(sip.INVITE, call.InviteRequest.Recipient)
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := call.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("re-INVITE: %v", err)
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, call.InviteRequest.Recipient)
		_ = call.WriteRequest(ack)
	}
	return res
}

func (p *goPhone) byeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byes
}

var errNoCall = errors.New("no call")
