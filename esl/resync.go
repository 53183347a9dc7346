package esl

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/callfloor/callfloor/media"
)

// resync rebuilds call and device state after (re)connecting. FreeSWITCH
// replays nothing a connection missed, so we ask:
//   - show channels as json: every live channel. Tracked Dials answered
//     meanwhile get their LegAnswered; untracked channels are adopted so
//     their hangups are reported; LegsPresent lists them all; then the
//     tracked legs missing from it, which ended while we were away, get
//     their LegEnded.
//   - show calls as json: bridged pairs, to restore peers (Connect of an
//     already bridged pair is then a no-op).
//   - show registrations as json: registered devices (DeviceState).
//
// Each reply is applied in the reader goroutine (onReply) at its place in
// the stream, so events before and after it are ordered around it.
func (c *Client) resync(ctx context.Context, cn *conn) error {
	c.mu.Lock()
	snapshotSeq := c.st.seq // legs added later are not in the snapshot
	regSeq := c.st.regSeq   // nor registration events seen later
	c.mu.Unlock()
	steps := []struct {
		cmd   string
		apply func(rows []map[string]string, now time.Time) []media.Fact
	}{
		{"api show channels as json", func(rows []map[string]string, now time.Time) []media.Fact {
			return c.applyChannels(rows, now, snapshotSeq)
		}},
		{"api show calls as json", c.applyCalls},
		{"api show registrations as json", func(rows []map[string]string, now time.Time) []media.Fact {
			return c.applyRegistrations(rows, now, regSeq)
		}},
	}
	for _, s := range steps {
		var perr error
		f, err := cn.send(ctx, s.cmd, func(f *frame) {
			rows, err := parseRows(f.body)
			if err != nil {
				perr = err
				return
			}
			now := c.now()
			c.mu.Lock()
			facts := s.apply(rows, now)
			mutes := c.st.dueMutes
			c.st.dueMutes = nil
			sctx := c.sessCtx
			c.mu.Unlock()
			c.report(facts)
			c.sendDueMutes(sctx, mutes)
		})
		if err != nil {
			return err
		}
		if _, err := checkReply(s.cmd, f); err != nil {
			return err
		}
		if perr != nil {
			return fmt.Errorf("%s: %w", s.cmd, perr)
		}
	}
	return nil
}

// parseRows reads {"row_count": 0} or {"row_count":N,"rows":[{…}]}. All
// values are strings on the wire; anything else is kept in its JSON form.
func parseRows(body []byte) ([]map[string]string, error) {
	var doc struct {
		RowCount int                          `json:"row_count"`
		Rows     []map[string]json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("esl: bad show … as json reply: %w", err)
	}
	rows := make([]map[string]string, 0, len(doc.Rows))
	for _, r := range doc.Rows {
		m := make(map[string]string, len(r))
		for k, v := range r {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			m[k] = s
		}
		rows = append(rows, m)
	}
	return rows, nil
}

func answeredState(callstate string) bool {
	switch callstate {
	case "ACTIVE", "HELD", "UNHELD":
		return true
	}
	return false
}

// applyChannels runs under c.mu.
func (c *Client) applyChannels(rows []map[string]string, now time.Time, snapshotSeq uint64) []media.Fact {
	t := &c.st
	live := map[string]map[string]string{}
	for _, r := range rows {
		if u := r["uuid"]; u != "" {
			live[u] = r
		}
	}
	var facts, ended []media.Fact
	for _, l := range sortedLegs(t.legs) {
		if l.seq > snapshotSeq {
			continue
		}
		var alive []string
		for _, u := range l.members {
			if _, ok := live[u]; ok {
				alive = append(alive, u)
			}
		}
		if l.answered && l.active != "" && live[l.active] == nil || len(alive) == 0 {
			cause := media.CauseFailed // it ended unseen: the real cause is lost
			if l.answered {
				cause = media.CauseNormal
			}
			ended = append(ended, t.end(l, cause, now))
			continue
		}
		if !l.answered {
			for _, u := range alive {
				if answeredState(live[u]["callstate"]) {
					facts = append(facts, t.onAnswer(u, now)...)
					break
				}
			}
		}
	}
	for t2, l := range t.byJob {
		if t.legs[l.id] != l {
			delete(t.byJob, t2) // its result was lost with the old connection
		}
	}
	for _, r := range rows {
		u := r["uuid"]
		if u == "" || t.byUUID[u] != nil {
			continue
		}
		l := &leg{id: media.LegID(u), kind: kindAdopted, members: []string{u}, active: u,
			answered: answeredState(r["callstate"]), caller: r["cid_num"]}
		if r["direction"] == "inbound" {
			l.hotline = r["dest"]
			l.announce = r["application"] == ""
		}
		t.add(l)
	}
	snap := media.Snapshot{At: now, Ended: ended, Answered: facts}
	for _, l := range sortedLegs(t.legs) {
		if l.announce {
			continue // not parked yet: routing hears of it from CallArrived
		}
		snap.Legs = append(snap.Legs, media.LegSnapshot{Leg: l.id, Answered: l.answered, Caller: l.caller, Hotline: l.hotline})
	}
	return snap.Facts() // media.Snapshot decides the order
}

// applyCalls restores peers from bridged pairs (runs under c.mu).
func (c *Client) applyCalls(rows []map[string]string, _ time.Time) []media.Fact {
	t := &c.st
	for _, r := range rows {
		a, b := t.byUUID[r["uuid"]], t.byUUID[r["b_uuid"]]
		if a != nil && b != nil {
			a.peer, b.peer = b.id, a.id
		}
	}
	return nil
}

// applyRegistrations replaces the device table (runs under c.mu).
// FreeSWITCH writes registrations to its database asynchronously, so the
// rows lag the events: a device registered by an event seen after the
// query was sent is kept even when missing, and one unregistered since is
// not brought back.
func (c *Client) applyRegistrations(rows []map[string]string, now time.Time, regSeq uint64) []media.Fact {
	t := &c.st
	fresh := map[string]map[string]registration{}
	put := func(agent, contact string, r registration) {
		if fresh[agent] == nil {
			fresh[agent] = map[string]registration{}
		}
		fresh[agent][contact] = r
	}
	for _, r := range rows {
		agent, ok := c.cfg.AgentForUser(r["reg_user"])
		if !ok {
			continue
		}
		key := contactKey(r["url"])
		if t.unregistered[agent+"|"+key] > regSeq {
			continue
		}
		epoch, _ := strconv.ParseInt(r["expires"], 10, 64)
		put(agent, key, registration{until: time.Unix(epoch, 0), user: r["reg_user"], dial: r["url"]})
	}
	for agent, contacts := range t.devices {
		for key, r := range contacts {
			if r.seq > regSeq {
				put(agent, key, r)
			}
		}
	}
	var facts []media.Fact
	for _, agent := range sortedKeys(t.devices) {
		if fresh[agent] == nil {
			facts = append(facts, media.DeviceState{FactBase: media.FactBase{At: now}, AgentID: agent})
		}
	}
	for _, agent := range sortedKeys(fresh) {
		var latestKey string
		var latestReg registration
		for _, key := range sortedKeys(fresh[agent]) {
			if r := fresh[agent][key]; r.seq > regSeq {
				latestKey = "" // already reported by its event
				break
			} else if !r.until.Before(latestReg.until) {
				latestKey, latestReg = key, r
			}
		}
		if latestKey == "" {
			continue
		}
		facts = append(facts, media.DeviceState{FactBase: media.FactBase{At: now}, AgentID: agent,
			Device: latestKey, Registered: true, Until: latest(fresh[agent])})
	}
	t.devices = fresh
	t.unregistered = map[string]uint64{}
	return facts
}

func sortedLegs(m map[media.LegID]*leg) []*leg {
	out := make([]*leg, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
