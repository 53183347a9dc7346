package ari

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
)

// call sends a command about a leg; a 404 becomes media.ErrLegGone.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, out any) error {
	err := c.rest.do(ctx, method, path, q, out)
	if notFound(err) {
		return fmt.Errorf("%w: %w", media.ErrLegGone, err)
	}
	return err
}

// chanOf returns the channel carrying a leg (the leg id itself for a leg
// this client does not track, so commands still reach Asterisk).
func (c *Client) chanOf(id media.LegID) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.legs[string(id)]; l != nil && l.live != "" {
		return l.live
	}
	return string(id)
}

func chanPath(id string, rest ...string) string {
	return "/channels/" + url.PathEscape(id) + strings.Join(rest, "")
}

// Answer answers an inbound leg.
func (c *Client) Answer(ctx context.Context, leg media.LegID) error {
	return c.call(ctx, "POST", chanPath(c.chanOf(leg), "/answer"), nil, nil)
}

// Hold puts a waiting leg on music on hold or plays it ringback. Music
// plays on the channel itself (POST /channels/{id}/moh): a holding bridge
// with its music cost Asterisk four more requests and a bridge a call
// (docs/performance.md, "Asterisk side by side with app_queue"). Asterisk
// keeps a channel's music going inside a bridge, so Connect stops it; a
// caller put back on hold from a call (its agent gone, a transfer) first
// leaves the call bridge, so music is all it hears and the bridge, empty,
// goes.
func (c *Client) Hold(ctx context.Context, legID media.LegID, mode media.HoldMode) error {
	ch := c.chanOf(legID)
	switch mode {
	case media.HoldRingback:
		return c.call(ctx, "POST", chanPath(ch, "/ring"), nil, nil)
	case media.HoldMusic:
	default:
		return fmt.Errorf("ari: hold mode %q: %w", mode, media.ErrNotSupported)
	}
	if call := c.bridgeWith(ch, roleCall); call != "" {
		if err := c.bridgeChannels(ctx, call, false, ch); err != nil {
			if errors.Is(err, media.ErrMediaUnavailable) {
				return err
			}
			c.log.Warn("leaving the call bridge for music on hold failed", "bridge", call, "err", err)
		}
	}
	if err := c.call(ctx, "POST", chanPath(ch, "/moh"), url.Values{"mohClass": {"default"}}, nil); err != nil {
		return err
	}
	c.mu.Lock()
	if l := c.legs[string(legID)]; l != nil && !l.ended() {
		l.moh = true
	}
	c.mu.Unlock()
	return nil
}

// newID makes a channel or bridge id we choose ourselves, so a leg is in
// the table before Asterisk can send an event about it.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// endpointsFor lists the dial strings a target rings under its
// distribution mode; customer is the leg the dial is for, if any.
func (c *Client) endpointsFor(ctx context.Context, t media.Target, number, customer string) ([]string, error) {
	trunk := func(n string) string { return strings.ReplaceAll(c.cfg.TrunkPattern, "{number}", n) }
	if number != "" {
		return []string{trunk(number)}, nil
	}
	eps, err := media.Ring(t)
	if err != nil {
		return nil, fmt.Errorf("ari: %w", err)
	}
	out := make([]string, 0, len(eps))
	for _, ep := range eps {
		switch {
		case ep.Kind == media.EndpointPhone:
			out = append(out, trunk(ep.Number))
		case strings.Contains(ep.User, "/"):
			out = append(out, ep.User)
		default:
			out = append(out, c.contactForks(ctx, ep.User, customer)...)
		}
	}
	return out, nil
}

// Dial originates the target's devices into Stasis (an answered channel
// enters the application, which is how we learn of the answer).
func (c *Client) Dial(ctx context.Context, req media.DialRequest) (media.LegID, error) {
	tag, who := tagAgent, req.Target.AgentID
	if req.Number != "" {
		tag, who = tagNumber, req.Number
	}
	return c.originate(ctx, &leg{kind: kindDialed}, req.Target, req.Number, string(req.Customer),
		[]string{tag, argSafe(who), argSafe(req.CallID)}, req.CallerID, req.Timeout.Seconds())
}

// originate rings every endpoint of a target as one logical leg.
func (c *Client) originate(ctx context.Context, l *leg, t media.Target, number, customer string, args []string, callerID string, timeout float64) (media.LegID, error) {
	if !c.Connected() {
		return "", fmt.Errorf("ari: dial: %w", media.ErrMediaUnavailable)
	}
	eps, err := c.endpointsFor(ctx, t, number, customer)
	if err != nil {
		return "", err
	}
	ids := make([]string, len(eps))
	l.pending = map[string]bool{}
	c.mu.Lock()
	for i := range eps {
		ids[i] = newID(dialPrefix)
		l.pending[ids[i]] = true
		c.chans[ids[i]] = l
	}
	l.id = ids[0]
	c.legs[l.id] = l
	c.mu.Unlock()

	secs := int(math.Ceil(timeout))
	if secs <= 0 {
		secs = 30
	}
	var lastErr error
	ok := 0
	for i, ep := range eps {
		c.mu.Lock()
		settled := !l.pending[ids[i]] // an earlier device answered: the fork is decided
		c.mu.Unlock()
		if settled {
			continue
		}
		q := url.Values{
			"endpoint":  {ep},
			"app":       {c.cfg.App},
			"appArgs":   {strings.Join(args, ",")},
			"timeout":   {strconv.Itoa(secs)},
			"channelId": {ids[i]},
		}
		if callerID != "" { // `"name" <number>`, as Asterisk parses it
			n := strings.NewReplacer(`"`, "", "<", "", ">", "", `\`, "").Replace(callerID)
			q.Set("callerId", `"`+n+`" <`+n+`>`)
		}
		if err := c.rest.do(ctx, "POST", "/channels", q, nil); err != nil {
			lastErr = err
			c.mu.Lock()
			delete(l.pending, ids[i])
			delete(c.chans, ids[i])
			c.mu.Unlock()
			continue
		}
		ok++
		// An earlier device answered (or routing hung the leg up) while
		// this one was being originated: the cancel may have reached
		// Asterisk before the channel existed, so end it now.
		c.mu.Lock()
		late := l.live != ids[i] && (!l.pending[ids[i]] || l.requested != "")
		cause := media.CauseCancelled
		if l.requested != "" {
			cause = l.requested
		}
		c.mu.Unlock()
		if late {
			c.hangupChannel(ids[i], cause)
		}
	}
	if ok == 0 {
		c.mu.Lock()
		delete(c.legs, l.id)
		l.state = legEnded
		c.mu.Unlock()
		if allocationFailed(lastErr) {
			return "", fmt.Errorf("ari: originate %s: %w: %w", strings.Join(eps, ","), media.ErrUnreachable, lastErr)
		}
		return "", fmt.Errorf("ari: originate %s: %w", strings.Join(eps, ","), lastErr)
	}
	// A device that failed at once may have ended before a later
	// originate of the fork was refused: then nothing rings any more.
	c.mu.Lock()
	var facts []media.Fact
	if len(l.pending) == 0 && !l.up() && !l.ended() {
		facts = c.endLeg(media.FactBase{At: time.Now()}, l, l.cause)
	}
	c.mu.Unlock()
	for _, f := range facts {
		c.facts.Report(f)
	}
	return media.LegID(l.id), nil
}

// Mute stops (or restarts) audio from a leg into its bridge.
func (c *Client) Mute(ctx context.Context, leg media.LegID, muted bool) error {
	method := "POST"
	if !muted {
		method = "DELETE"
	}
	return c.call(ctx, method, chanPath(c.chanOf(leg), "/mute"), url.Values{"direction": {"in"}}, nil)
}

// Hangup ends a leg (every ringing device of a forked dial). A leg that is
// already gone is not an error.
func (c *Client) Hangup(ctx context.Context, legID media.LegID, cause media.Cause) error {
	c.mu.Lock()
	chans := []string{string(legID)}
	if l := c.legs[string(legID)]; l != nil {
		l.requested = cause
		if l.up() {
			chans = []string{l.live}
		} else {
			chans = chans[:0]
			for ch := range l.pending {
				chans = append(chans, ch)
			}
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, ch := range chans {
		err := c.rest.do(ctx, "DELETE", chanPath(ch), url.Values{"reason_code": {strconv.Itoa(media.Q850(cause))}}, nil)
		if err != nil && !notFound(err) {
			// Routing has let the leg go; the next resync hangs it up if
			// Asterisk still has it, so nobody stays connected in a call
			// the floor shows as ended.
			c.mu.Lock()
			c.unhung[ch] = cause
			c.mu.Unlock()
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("ari: hangup: %w", errors.Join(errs...))
	}
	return nil
}

// Capabilities implements media.Media: Asterisk mixes in bridges, so every
// supervisor action is possible.
func (c *Client) Capabilities() media.Capabilities {
	return media.Capabilities{Path: media.PathAsterisk}
}

// Gone implements media.Media from one GET /channels: a leg is gone when
// none of its channels is listed (a dial still originating counts while
// any of its channels is).
func (c *Client) Gone(ctx context.Context, legs []media.LegID) ([]media.LegID, error) {
	var chans []chanInfo
	if err := c.rest.do(ctx, "GET", "/channels", nil, &chans); err != nil {
		return nil, fmt.Errorf("ari: list channels: %w", err)
	}
	present := make(map[string]bool, len(chans))
	for _, ch := range chans {
		present[ch.ID] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var gone []media.LegID
	for _, id := range legs {
		l := c.legs[string(id)]
		alive := false
		switch {
		case l == nil:
			alive = present[string(id)]
		case l.ended():
		case l.up():
			alive = present[l.live]
		default:
			for ch := range l.pending {
				alive = alive || present[ch]
			}
		}
		if !alive {
			gone = append(gone, id)
		}
	}
	return gone, nil
}
