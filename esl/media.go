package esl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
)

// Media-path constants.
const (
	musicOnHold = "local_stream://default"
	// ringbackTone is the North American ringback (440+480 Hz, 2 s on, 4 s off).
	ringbackTone   = "tone_stream://%(2000,4000,440,480);loops=-1"
	defaultRingFor = 30 * time.Second
)

// uuidOf returns the FreeSWITCH uuid carrying leg. An untracked leg is
// tried as a uuid as-is: FreeSWITCH then says whether it exists.
func (c *Client) uuidOf(leg media.LegID) (string, *leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.st.legs[leg]
	switch {
	case l == nil:
		return string(leg), nil
	case l.active != "":
		return l.active, l
	default:
		return l.members[0], l
	}
}

// legErr turns FreeSWITCH's "no such channel" replies into ErrLegGone.
func legErr(err error) error {
	var re *replyError
	if errors.As(err, &re) {
		t := strings.ToLower(re.text)
		if strings.Contains(t, "no such channel") || strings.Contains(t, "invalid uuid") || strings.Contains(t, "cannot locate session") {
			return fmt.Errorf("%w: %v", media.ErrLegGone, err)
		}
	}
	return err
}

// Answer answers an inbound leg (uuid_answer).
func (c *Client) Answer(ctx context.Context, leg media.LegID) error {
	uuid, _ := c.uuidOf(leg)
	_, err := c.api(ctx, "api uuid_answer "+uuid, nil)
	return legErr(err)
}

// Hold plays music on hold (local_stream, i.e. mod_local_stream's default
// stream) or a ringback tone to a waiting leg. An unanswered leg is
// pre-answered first so the ringback reaches the caller as early media.
// A later uuid_bridge stops the broadcast by itself (no uuid_break).
func (c *Client) Hold(ctx context.Context, leg media.LegID, mode media.HoldMode) error {
	uuid, l := c.uuidOf(leg)
	var path string
	switch mode {
	case media.HoldMusic:
		path = musicOnHold
	case media.HoldRingback:
		path = ringbackTone
		answered := true
		if l != nil {
			c.mu.Lock()
			answered = l.answered
			c.mu.Unlock()
		}
		if !answered {
			if _, err := c.api(ctx, "api uuid_pre_answer "+uuid, nil); err != nil {
				return legErr(err)
			}
		}
	default:
		return fmt.Errorf("esl: unknown hold mode %q", mode)
	}
	_, err := c.api(ctx, "api uuid_broadcast "+uuid+" "+path+" aleg", nil)
	return legErr(err)
}

// Dial rings req's target with one bgapi originate. Every device of the
// distribution mode is one comma-separated fork (simultaneous ring, first
// answer wins), each with its own origination_uuid in its [] leg
// variables; the first fork's uuid is the leg id.
func (c *Client) Dial(ctx context.Context, req media.DialRequest) (media.LegID, error) {
	var eps []string
	var err error
	if req.Number != "" {
		var ep string
		ep, err = c.gateway(req.Number)
		eps = []string{ep}
	} else {
		eps, err = c.endpoints(req.Target)
	}
	if err != nil {
		return "", err
	}
	vars := originateVars(req.Timeout, req.CallerID, req.CallID)
	l := &leg{kind: kindDial, pab: true, caller: req.CallerID}
	return c.originate(ctx, l, vars, eps, "&park()")
}

// Monitor rings the supervisor and, on answer, runs eavesdrop on the
// agent's channel. Whisper direction is relative to the eavesdropped
// channel: eavesdrop_whisper_bleg mixes the supervisor into what the
// agent's phone hears, eavesdrop_whisper_aleg into what the far end
// (the customer) hears; barge sets both.
func (c *Client) Monitor(ctx context.Context, req media.MonitorRequest) (media.LegID, error) {
	if !req.Mode.Valid() {
		return "", fmt.Errorf("esl: unknown monitor mode %q", req.Mode)
	}
	agent, _ := c.uuidOf(req.Agent)
	eps, err := c.endpoints(req.Supervisor)
	if err != nil {
		return "", err
	}
	_, cust := c.uuidOf(req.Customer)
	callerID := ""
	if cust != nil {
		callerID = cust.caller
	}
	vars := originateVars(req.Timeout, callerID, req.CallID)
	vars = append(vars, "callfloor_mode="+string(req.Mode))
	vars = append(vars, whisperVars(req.Mode)...)
	l := &leg{kind: kindMonitor, pab: true, caller: callerID, mode: req.Mode}
	return c.originate(ctx, l, vars, eps, "&eavesdrop("+agent+")")
}

func whisperVars(m media.MonitorMode) []string {
	switch m {
	case media.MonitorWhisper:
		return []string{"eavesdrop_whisper_bleg=true"}
	case media.MonitorBarge:
		return []string{"eavesdrop_whisper_aleg=true", "eavesdrop_whisper_bleg=true"}
	}
	return nil
}

// originateVars are the {} variables every originate carries.
// park_after_bridge keeps a leg alive (parked) when its bridge partner
// leaves, so FreeSWITCH never hangs up a leg on its own: routing decides.
func originateVars(timeout time.Duration, callerID, callID string) []string {
	if timeout <= 0 {
		timeout = defaultRingFor
	}
	secs := int(math.Ceil(timeout.Seconds()))
	vars := []string{fmt.Sprintf("originate_timeout=%d", secs), "ignore_early_media=true", "park_after_bridge=true"}
	if v := safeValue(callerID); v != "" {
		vars = append(vars, "origination_caller_id_number="+v, "origination_caller_id_name="+v)
	}
	if v := safeValue(callID); v != "" {
		vars = append(vars, "callfloor_call_id="+v)
	}
	return vars
}

// originate builds and sends "bgapi originate {vars}[origination_uuid=…]ep,… app".
// The uuid goes in each fork's [] variables: eslgo's OriginateCall drops
// origination_uuid from {}, and in {} it could name one fork only anyway.
func (c *Client) originate(ctx context.Context, l *leg, vars, eps []string, app string) (media.LegID, error) {
	forks := make([]string, len(eps))
	for i, ep := range eps {
		u := c.newUUID()
		l.members = append(l.members, u)
		forks[i] = "[origination_uuid=" + u + "]" + ep
	}
	l.id = media.LegID(l.members[0])
	cmd := "bgapi originate {" + strings.Join(vars, ",") + "}" + strings.Join(forks, ",") + " " + app

	// Track the leg before sending: its events may follow the reply at once.
	c.mu.Lock()
	c.st.add(l)
	c.mu.Unlock()
	_, err := c.api(ctx, cmd, func(f *frame) {
		if f.jobUUID == "" {
			return
		}
		c.mu.Lock()
		c.st.byJob[f.jobUUID] = l
		c.mu.Unlock()
	})
	if err != nil {
		c.mu.Lock()
		c.st.remove(l)
		c.mu.Unlock()
		if ctx.Err() != nil {
			// The command may have gone out: cancel what it may ring.
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			for _, u := range l.members {
				_, _ = c.api(kctx, "api uuid_kill "+u+" ORIGINATOR_CANCEL", nil)
			}
			cancel()
		}
		return "", fmt.Errorf("esl: originate: %w", err)
	}
	return l.id, nil
}

// endpoints lists the dial strings of what the target's mode rings
// (media.Ring): a device as user/<SIP user>, or, when the user has several
// registered contacts (a web and a mobile softphone, with
// multiple-registrations on: freeswitch-conf/README.md), each contact as
// its own sofia/<profile>/<contact> fork. FreeSWITCH's user/ endpoint
// would fork to them itself, but every channel it makes takes the fork's
// [origination_uuid]: the second is refused ("Duplicate UUID!",
// DESTINATION_OUT_OF_ORDER) and only the first contact rings (seen on a
// real FreeSWITCH 1.11.1).
func (c *Client) endpoints(t media.Target) ([]string, error) {
	rings, err := media.Ring(t)
	if err != nil {
		return nil, fmt.Errorf("esl: %w", err)
	}
	eps := make([]string, 0, len(rings))
	for _, r := range rings {
		switch {
		case r.Kind == media.EndpointPhone:
			ep, err := c.gateway(r.Number)
			if err != nil {
				return nil, err
			}
			eps = append(eps, ep)
		case strings.Contains(r.User, "/"):
			eps = append(eps, r.User)
		default:
			c.mu.Lock()
			var contacts []string
			if agent, ok := c.cfg.AgentForUser(r.User); ok {
				contacts = c.st.contactsOf(agent, r.User)
			}
			c.mu.Unlock()
			if len(contacts) > 1 {
				eps = append(eps, contacts...)
			} else {
				eps = append(eps, c.cfg.DeviceFor(r.User))
			}
		}
	}
	for _, ep := range eps {
		if ep == "" || strings.ContainsAny(ep, " \t\r\n,{}[]'") {
			return nil, fmt.Errorf("%w: bad dial string %q for agent %s", media.ErrUnreachable, ep, t.AgentID)
		}
	}
	return eps, nil
}

var phoneNumber = regexp.MustCompile(`^\+?[0-9*#]{1,32}$`)

func (c *Client) gateway(number string) (string, error) {
	if !phoneNumber.MatchString(number) {
		return "", fmt.Errorf("%w: %q is not a dialable number", media.ErrUnreachable, number)
	}
	return strings.ReplaceAll(c.cfg.GatewayPattern, "{number}", number), nil
}

// safeValue keeps what may stand unquoted in an originate variable list.
func safeValue(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("+-_.@:#*", r):
			return r
		}
		return -1
	}, s)
}
