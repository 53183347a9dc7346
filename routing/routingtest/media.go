package routingtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/callfloor/callfloor/media"
)

// Command is one call the engine made on the media double.
type Command struct {
	Op      string // answer, hold, dial, connect, monitor, set_monitor_mode, mute, hangup
	Leg     media.LegID
	Other   media.LegID          // connect: the second leg
	Hold    media.HoldMode       // hold
	Cause   media.Cause          // hangup
	Mode    media.MonitorMode    // monitor, set_monitor_mode
	Muted   bool                 // mute
	Dial    media.DialRequest    // dial
	Monitor media.MonitorRequest // monitor
	Result  media.LegID          // dial, monitor: the leg handed back
}

// Media is a media.Media that records commands. Dial and Monitor hand
// out legs "leg-1", "leg-2", …; facts are injected by the test through
// the engine's Report. Err hooks make a command fail.
type Media struct {
	mu       sync.Mutex
	seq      int
	commands []Command
	// Fail, when it returns non-nil for a command, makes that command
	// return the error (and, for dial and monitor, no leg).
	Fail func(c Command) error
	// Caps is what Capabilities declares (zero: every action supported).
	Caps media.Capabilities
	// vanished are legs the media server no longer has (Vanish).
	vanished map[media.LegID]bool
	audits   int
}

// Vanish makes the media server lose leg without telling anyone: Gone
// reports it from now on.
func (m *Media) Vanish(leg media.LegID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vanished == nil {
		m.vanished = map[media.LegID]bool{}
	}
	m.vanished[leg] = true
}

// Gone implements media.Media (not recorded as a command).
func (m *Media) Gone(_ context.Context, legs []media.LegID) ([]media.LegID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audits++
	var gone []media.LegID
	for _, l := range legs {
		if m.vanished[l] {
			gone = append(gone, l)
		}
	}
	return gone, nil
}

// Audits counts Gone calls.
func (m *Media) Audits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.audits
}

// Capabilities implements media.Media.
func (m *Media) Capabilities() media.Capabilities {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Caps
}

var _ media.Media = (*Media)(nil)

func (m *Media) record(c Command, newLeg bool) (media.LegID, error) {
	m.mu.Lock()
	fail := m.Fail
	m.mu.Unlock()
	if fail != nil {
		if err := fail(c); err != nil {
			return "", err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if newLeg {
		m.seq++
		c.Result = media.LegID(fmt.Sprintf("leg-%d", m.seq))
	}
	m.commands = append(m.commands, c)
	return c.Result, nil
}

// Answer implements media.Media.
func (m *Media) Answer(_ context.Context, leg media.LegID) error {
	_, err := m.record(Command{Op: "answer", Leg: leg}, false)
	return err
}

// Hold implements media.Media.
func (m *Media) Hold(_ context.Context, leg media.LegID, mode media.HoldMode) error {
	_, err := m.record(Command{Op: "hold", Leg: leg, Hold: mode}, false)
	return err
}

// Dial implements media.Media.
func (m *Media) Dial(_ context.Context, req media.DialRequest) (media.LegID, error) {
	return m.record(Command{Op: "dial", Dial: req}, true)
}

// Connect implements media.Media.
func (m *Media) Connect(_ context.Context, a, b media.LegID) error {
	_, err := m.record(Command{Op: "connect", Leg: a, Other: b}, false)
	return err
}

// Monitor implements media.Media.
func (m *Media) Monitor(_ context.Context, req media.MonitorRequest) (media.LegID, error) {
	return m.record(Command{Op: "monitor", Monitor: req, Mode: req.Mode}, true)
}

// SetMonitorMode implements media.Media.
func (m *Media) SetMonitorMode(_ context.Context, leg media.LegID, mode media.MonitorMode) error {
	_, err := m.record(Command{Op: "set_monitor_mode", Leg: leg, Mode: mode}, false)
	return err
}

// Mute implements media.Media.
func (m *Media) Mute(_ context.Context, leg media.LegID, muted bool) error {
	_, err := m.record(Command{Op: "mute", Leg: leg, Muted: muted}, false)
	return err
}

// Hangup implements media.Media.
func (m *Media) Hangup(_ context.Context, leg media.LegID, cause media.Cause) error {
	_, err := m.record(Command{Op: "hangup", Leg: leg, Cause: cause}, false)
	return err
}

// Commands returns every recorded command, oldest first.
func (m *Media) Commands() []Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Command(nil), m.commands...)
}

// Ops returns the recorded commands of one op.
func (m *Media) Ops(op string) []Command {
	var out []Command
	for _, c := range m.Commands() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// Dials returns the dial commands.
func (m *Media) Dials() []Command { return m.Ops("dial") }

// DialOf returns the newest dial that rang agent (and ok=false if none).
func (m *Media) DialOf(agent string) (Command, bool) {
	ds := m.Dials()
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Dial.Target.AgentID == agent && ds[i].Dial.Number == "" {
			return ds[i], true
		}
	}
	return Command{}, false
}

// HungUp reports whether leg was hung up.
func (m *Media) HungUp(leg media.LegID) bool {
	for _, c := range m.Ops("hangup") {
		if c.Leg == leg {
			return true
		}
	}
	return false
}

// Reset forgets recorded commands (leg numbering continues).
func (m *Media) Reset() {
	m.mu.Lock()
	m.commands = nil
	m.mu.Unlock()
}
