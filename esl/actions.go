package esl

import (
	"context"
	"errors"
	"fmt"

	"github.com/callfloor/callfloor/media"
)

// Connect bridges a and b with uuid_bridge. Both legs get
// park_after_bridge=true first (legs we originate carry it already), so a
// leg displaced by a new bridge, or left alone when its partner hangs up,
// is parked instead of hung up by FreeSWITCH: routing hangs it up (or
// re-queues the customer) itself, as on Asterisk where a channel leaving a
// bridge stays in the Stasis app. FreeSWITCH reports the bridge on a's
// uuid only.
func (c *Client) Connect(ctx context.Context, a, b media.LegID) error {
	ua, la := c.uuidOf(a)
	ub, lb := c.uuidOf(b)
	c.mu.Lock()
	already := la != nil && lb != nil && la.peer == lb.id && lb.peer == la.id
	c.mu.Unlock()
	if already {
		return nil
	}
	for _, x := range []struct {
		uuid string
		l    *leg
	}{{ua, la}, {ub, lb}} {
		// An untracked leg is not ours to change.
		c.mu.Lock()
		pab := x.l == nil || x.l.pab
		c.mu.Unlock()
		if pab {
			continue
		}
		if _, err := c.api(ctx, "api uuid_setvar "+x.uuid+" park_after_bridge true", nil); err != nil {
			return legErr(err)
		}
		c.mu.Lock()
		x.l.pab = true
		c.mu.Unlock()
	}
	_, err := c.api(ctx, "api uuid_bridge "+ua+" "+ub, nil)
	return legErr(err)
}

// monitorDigit is eavesdrop's in-call DTMF control (switch_ivr_async.c,
// switch_ivr_eavesdrop_session): 0 clears both whisper flags, 2 sets
// ED_MUX_WRITE only (the agent hears the supervisor), 3 sets both.
var monitorDigit = map[media.MonitorMode]string{
	media.MonitorListen:  "0",
	media.MonitorWhisper: "2",
	media.MonitorBarge:   "3",
}

// SetMonitorMode switches a monitor leg's mode without re-ringing the
// supervisor. While eavesdrop runs (the leg answered) the mode digit is
// injected as if the supervisor pressed it (uuid_recv_dtmf; eavesdrop
// reads DTMF unless eavesdrop_enable_dtmf=false, which we never set).
// Before answer, the whisper variables eavesdrop reads at start are set.
func (c *Client) SetMonitorMode(ctx context.Context, supervisor media.LegID, mode media.MonitorMode) error {
	if !mode.Valid() {
		return fmt.Errorf("esl: unknown monitor mode %q", mode)
	}
	uuid, l := c.uuidOf(supervisor)
	if l == nil {
		return fmt.Errorf("%w: %s is not a monitor leg", media.ErrLegGone, supervisor)
	}
	c.mu.Lock()
	kind, answered := l.kind, l.answered
	c.mu.Unlock()
	if kind != kindMonitor {
		return fmt.Errorf("esl: %s is not a monitor leg", supervisor)
	}
	if answered {
		if _, err := c.api(ctx, "api uuid_recv_dtmf "+uuid+" "+monitorDigit[mode], nil); err != nil {
			return legErr(err)
		}
	} else {
		aleg, bleg := "false", "false"
		switch mode {
		case media.MonitorWhisper:
			bleg = "true"
		case media.MonitorBarge:
			aleg, bleg = "true", "true"
		}
		for _, kv := range [][2]string{{"eavesdrop_whisper_aleg", aleg}, {"eavesdrop_whisper_bleg", bleg}} {
			if _, err := c.api(ctx, "api uuid_setvar "+uuid+" "+kv[0]+" "+kv[1], nil); err != nil {
				return legErr(err)
			}
		}
	}
	c.mu.Lock()
	l.mode = mode
	c.mu.Unlock()
	return nil
}

// Mute silences what FreeSWITCH reads from a leg (the supervisor's
// microphone), leaving what the leg hears untouched. uuid_audio needs all
// five arguments ("<uuid> start read mute <level>"); in
// session_audio_callback (switch_ivr_async.c) a level of 0 disables the
// mute, levels above 1 substitute comfort noise, and any other level (-1)
// zeroes the frames: digital silence.
//
// A leg that has not answered yet has no media, and uuid_audio's media bug
// would try to pre-answer it (switch_core_media_bug_add): the mute is
// remembered instead and sent when the leg answers (routing pauses a
// monitor that re-joins a transferred call before the supervisor picks up).
func (c *Client) Mute(ctx context.Context, leg media.LegID, muted bool) error {
	uuid, l := c.uuidOf(leg)
	if l != nil {
		c.mu.Lock()
		deferred := !l.answered
		if deferred {
			l.muted = muted
		}
		c.mu.Unlock()
		if deferred {
			return nil
		}
	}
	if _, err := c.api(ctx, muteCommand(uuid, muted), nil); err != nil {
		return legErr(err)
	}
	if l != nil {
		c.mu.Lock()
		l.muted = muted
		c.mu.Unlock()
	}
	return nil
}

func muteCommand(uuid string, muted bool) string {
	if muted {
		return "api uuid_audio " + uuid + " start read mute -1"
	}
	return "api uuid_audio " + uuid + " stop"
}

// Hangup ends a leg with uuid_kill. An unanswered Dial kills every fork
// still ringing. A leg that is already gone is not an error.
func (c *Client) Hangup(ctx context.Context, leg media.LegID, cause media.Cause) error {
	uuids := []string{string(leg)}
	c.mu.Lock()
	if l := c.st.legs[leg]; l != nil {
		switch {
		case l.active != "":
			uuids = []string{l.active}
		default:
			uuids = uuids[:0]
			for _, u := range l.members {
				if _, gone := l.gone[u]; !gone {
					uuids = append(uuids, u)
				}
			}
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, u := range uuids {
		_, err := c.api(ctx, "api uuid_kill "+u+" "+hangupCause(cause), nil)
		if err = legErr(err); err != nil && !errors.Is(err, media.ErrLegGone) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Capabilities implements media.Media: FreeSWITCH eavesdrops and bridges,
// so every supervisor action is possible.
func (c *Client) Capabilities() media.Capabilities {
	return media.Capabilities{Path: media.PathFreeSWITCH}
}

// Gone implements media.Media from one show channels: a leg is gone when
// none of its channels is listed and no originate for it is pending.
func (c *Client) Gone(ctx context.Context, legs []media.LegID) ([]media.LegID, error) {
	var rows []map[string]string
	var perr error
	_, err := c.api(ctx, "api show channels as json", func(f *frame) { rows, perr = parseRows(f.body) })
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("esl: show channels: %w", err)
	}
	present := make(map[string]bool, len(rows))
	for _, r := range rows {
		present[r["uuid"]] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := map[*leg]bool{}
	for _, l := range c.st.byJob {
		pending[l] = true
	}
	var gone []media.LegID
	for _, id := range legs {
		l := c.st.legs[id]
		alive := present[string(id)]
		if l != nil {
			alive = alive || pending[l]
			for _, u := range l.members {
				alive = alive || present[u]
			}
		}
		if !alive {
			gone = append(gone, id)
		}
	}
	return gone, nil
}
