package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// sipEnd is one SIP user agent of the load tool (the trunk, or every
// agent's phone): sipgo's UA, client and server on one loopback UDP
// socket, so requests and responses share the port the server knows.
type sipEnd struct {
	ua     *sipgo.UserAgent
	client *sipgo.Client
	server *sipgo.Server
	conn   net.PacketConn
	port   int
	served chan struct{}
}

func newSIPEnd(name string) (*sipEnd, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("callfloor-load-"+name),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	if err != nil {
		conn.Close()
		return nil, err
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientAddr(conn.LocalAddr().String()), sipgo.WithClientLogger(quiet))
	if err != nil {
		ua.Close()
		conn.Close()
		return nil, err
	}
	server, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		ua.Close()
		conn.Close()
		return nil, err
	}
	return &sipEnd{ua: ua, client: client, server: server, conn: conn, port: port, served: make(chan struct{})}, nil
}

// serve reads the socket until close.
func (e *sipEnd) serve() {
	defer close(e.served)
	_ = e.server.ServeUDP(e.conn)
}

func (e *sipEnd) close() {
	e.conn.Close()
	<-e.served
	e.client.Close()
	e.ua.Close()
}

func (e *sipEnd) contact(user string) sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: e.port}}
}

// sdp is a minimal audio offer/answer; the load tool sends no RTP.
func sdp(name string, port int) []byte {
	return []byte("v=0\r\no=" + name + " 1 1 IN IP4 127.0.0.1\r\ns=callfloor-load\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

// phones answers for every agent: each agent registers a contact with its
// own user part on one shared socket; an INVITE rings (180), is answered
// after answerDelay (200 with SDP) and lasts until the BYE.
type phones struct {
	end         *sipEnd
	dialogs     *sipgo.DialogServerCache
	answerDelay time.Duration
	ctx         context.Context
	answered    atomic.Int64
	ended       atomic.Int64
	errors      atomic.Int64
	live        sync.WaitGroup
}

func startPhones(ctx context.Context, answerDelay time.Duration) (*phones, error) {
	end, err := newSIPEnd("phones")
	if err != nil {
		return nil, err
	}
	p := &phones{end: end, answerDelay: answerDelay, ctx: ctx}
	p.dialogs = sipgo.NewDialogServerCache(end.client, end.contact("phones"))
	end.server.OnInvite(p.onInvite)
	end.server.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dialogs.ReadAck(req, tx) })
	end.server.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dialogs.ReadBye(req, tx); err == nil {
			p.ended.Add(1)
		}
	})
	go end.serve()
	return p, nil
}

func (p *phones) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.live.Add(1)
	defer p.live.Done()
	dlg, err := p.dialogs.ReadInvite(req, tx)
	if err != nil {
		p.errors.Add(1)
		return
	}
	defer dlg.Close()
	if err := dlg.Respond(sip.StatusRinging, "Ringing", nil); err != nil {
		p.errors.Add(1)
		return
	}
	t := time.NewTimer(p.answerDelay)
	select {
	case <-t.C:
	case <-p.ctx.Done():
		t.Stop()
		_ = dlg.Respond(sip.StatusTemporarilyUnavailable, "Load over", nil)
		return
	case <-dlg.Context().Done(): // cancelled while ringing
		t.Stop()
		return
	}
	if err := dlg.RespondSDP(sdp("phone", 40000)); err != nil {
		p.errors.Add(1)
		return
	}
	p.answered.Add(1)
	select {
	case <-dlg.Context().Done():
	case <-p.ctx.Done():
	}
}

// register binds agent's contact on the shared socket, with digest auth
// (password sip-<id>, the floor's default).
func (p *phones) register(ctx context.Context, server sip.Uri, agent string) error {
	req := sip.NewRequest(sip.REGISTER, server)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: agent, Host: server.Host}}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: agent, Host: server.Host}})
	c := p.end.contact(agent)
	req.AppendHeader(&c)
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	res, err := p.end.client.Do(ctx, req)
	if err == nil && res.StatusCode == sip.StatusUnauthorized {
		res, err = p.end.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: agent, Password: "sip-" + agent})
	}
	if err != nil {
		return fmt.Errorf("register %s: %w", agent, err)
	}
	if res.StatusCode != sip.StatusOK {
		return fmt.Errorf("register %s: %d %s", agent, res.StatusCode, res.Reason)
	}
	return nil
}

func (p *phones) close() {
	p.end.close()
	p.live.Wait()
}

// trunk places calls from customer numbers to the hotline, acknowledges
// the answer, talks for talk, and hangs up.
type trunk struct {
	end     *sipEnd
	dialogs *sipgo.DialogClientCache
	target  sip.Uri
	talk    time.Duration
}

func startTrunk(server sip.Uri, hotline string, talk time.Duration) (*trunk, error) {
	end, err := newSIPEnd("trunk")
	if err != nil {
		return nil, err
	}
	t := &trunk{end: end, talk: talk, target: sip.Uri{Scheme: "sip", User: hotline, Host: server.Host, Port: server.Port}}
	t.dialogs = sipgo.NewDialogClientCache(end.client, end.contact("trunk"))
	// The server may end a call first (agent hung up, shutdown).
	end.server.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = t.dialogs.ReadBye(req, tx) })
	go end.serve()
	return t, nil
}

// call places one call; answered is called when the 200 OK arrives.
func (t *trunk) call(ctx context.Context, customer string, answered func()) error {
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: customer, Host: "127.0.0.1", Port: t.end.port}}
	from.Params.Add("tag", sip.GenerateTagN(8))
	sess, err := t.dialogs.Invite(ctx, t.target, sdp("trunk", 30000), from)
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return fmt.Errorf("call refused: %d %s", de.Res.StatusCode, de.Res.Reason)
		}
		return fmt.Errorf("wait answer: %w", err)
	}
	answered()
	if err := sess.Ack(ctx); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	tm := time.NewTimer(t.talk)
	select {
	case <-tm.C:
	case <-ctx.Done():
		tm.Stop()
	case <-sess.Context().Done():
		tm.Stop()
		return errors.New("the server ended the call before the talk time")
	}
	byeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := sess.Bye(byeCtx); err != nil {
		return fmt.Errorf("bye: %w", err)
	}
	return nil
}

func (t *trunk) close() { t.end.close() }
