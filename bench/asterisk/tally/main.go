// Command tally turns one run of the Asterisk side-by-side bench
// (bench/asterisk/README.md) into a row of its table: calls attempted,
// connected and failed, setup time from the caller's INVITE to the agent
// phone's 200 OK (p50/p95), where that time went (p95 from the INVITE to
// Asterisk's 100 Trying, and to the agent phone's INVITE), and the CPU, ARI events and REST requests per
// attempted call that run.sh measured around the run.
//
// Calls are matched across the two sipp message traces (-trace_msg) by the
// caller number 849000<n> that sipp/caller.xml sends: Asterisk carries it
// to the agent's INVITE as the caller id, on both sides.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// message is one SIP message of a sipp -trace_msg file.
type message struct {
	at    time.Time
	sent  bool
	first string            // request or status line
	hdr   map[string]string // first value of each header, by lower-case name
}

// traceSep starts every message in a sipp -trace_msg file, followed by the
// local time it was sent or received.
const traceSep = "----------------------------------------------- "

const traceTime = "2006-01-02 15:04:05.000000"

// errTrace reports a trace that is not sipp's -trace_msg format.
var errTrace = errors.New("tally: not a sipp message trace")

// parseTrace calls fn for every message of a sipp -trace_msg file, in
// order. Message bodies are skipped.
func parseTrace(r io.Reader, fn func(message)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		cur    *message
		inBody bool
	)
	flush := func() {
		if cur != nil && cur.first != "" {
			fn(*cur)
		}
		cur = nil
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if ts, ok := strings.CutPrefix(line, traceSep); ok {
			flush()
			at, err := time.ParseInLocation(traceTime, strings.TrimSpace(ts), time.Local)
			if err != nil {
				return fmt.Errorf("%w: time %q: %w", errTrace, ts, err)
			}
			cur = &message{at: at, hdr: map[string]string{}}
			inBody = false
			continue
		}
		if cur == nil {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return fmt.Errorf("%w: text before the first message", errTrace)
		}
		switch {
		case inBody:
		case cur.first == "" && strings.HasPrefix(line, "UDP message sent"):
			cur.sent = true
		case cur.first == "" && strings.HasPrefix(line, "UDP message received"):
		case cur.first == "" && strings.TrimSpace(line) == "":
		case cur.first == "":
			cur.first = line
		case strings.TrimSpace(line) == "":
			inBody = true
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			name = strings.ToLower(strings.TrimSpace(name))
			if _, seen := cur.hdr[name]; !seen {
				cur.hdr[name] = strings.TrimSpace(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("tally: reading trace: %w", err)
	}
	flush()
	return nil
}

var callerKey = regexp.MustCompile(`849000(\d+)`)

// key is the bench call a message belongs to ("" if none).
func (m message) key() string {
	k := callerKey.FindStringSubmatch(m.hdr["from"])
	if k == nil {
		return ""
	}
	return k[1]
}

// inviteOK reports a 200 OK to an INVITE.
func (m message) inviteOK() bool {
	return strings.HasPrefix(m.first, "SIP/2.0 200") && strings.HasSuffix(m.hdr["cseq"], "INVITE")
}

// calls is what both traces say about the bench calls.
type calls struct {
	invited  map[string]time.Time // caller's first INVITE
	answered map[string]bool      // caller got a 200 OK
	trying   map[string]time.Time // caller's first 100 Trying: Asterisk's SIP stack has the call
	agentInv map[string]time.Time // an agent phone's first INVITE for the call
	agentOK  map[string]time.Time // an agent phone's first 200 OK
}

func readCalls(caller, agents io.Reader) (*calls, error) {
	c := &calls{invited: map[string]time.Time{}, answered: map[string]bool{}, trying: map[string]time.Time{},
		agentInv: map[string]time.Time{}, agentOK: map[string]time.Time{}}
	first := func(m map[string]time.Time, k string, at time.Time) {
		if _, ok := m[k]; !ok {
			m[k] = at
		}
	}
	err := parseTrace(caller, func(m message) {
		k := m.key()
		switch {
		case k == "":
		case m.sent && strings.HasPrefix(m.first, "INVITE "):
			first(c.invited, k, m.at)
		case !m.sent && strings.HasPrefix(m.first, "SIP/2.0 100"):
			first(c.trying, k, m.at)
		case !m.sent && m.inviteOK():
			c.answered[k] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("caller trace: %w", err)
	}
	err = parseTrace(agents, func(m message) {
		switch k := m.key(); {
		case k == "":
		case !m.sent && strings.HasPrefix(m.first, "INVITE "):
			first(c.agentInv, k, m.at)
		case m.sent && m.inviteOK():
			first(c.agentOK, k, m.at)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("agents trace: %w", err)
	}
	return c, nil
}

// setups returns the setup time of every connected call (the caller was
// answered and an agent's phone answered), sorted.
func (c *calls) setups() []time.Duration {
	var out []time.Duration
	for k, at := range c.invited {
		ok, agent := c.answered[k], c.agentOK[k]
		if ok && !agent.IsZero() {
			out = append(out, agent.Sub(at))
		}
	}
	slices.Sort(out)
	return out
}

// since returns, sorted, how long after the caller's INVITE each call
// reached a point (to).
func (c *calls) since(to map[string]time.Time) []time.Duration {
	var out []time.Duration
	for k, at := range c.invited {
		if t, ok := to[k]; ok {
			out = append(out, t.Sub(at))
		}
	}
	slices.Sort(out)
	return out
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func main() {
	var (
		callerPath, agentsPath, side, note string
		rate                               float64
		astCPU, cfCPU, redisCPU            float64
		events, requests                   float64
		header                             bool
	)
	flag.BoolVar(&header, "header", false, "print the table's header and exit")
	flag.StringVar(&callerPath, "caller", "", "the caller sipp's -trace_msg file")
	flag.StringVar(&agentsPath, "agents", "", "the agents sipp's -trace_msg file")
	flag.StringVar(&side, "side", "", "app_queue or callfloor")
	flag.StringVar(&note, "note", "", "last column (warnings counted in the logs)")
	flag.Float64Var(&rate, "rate", 0, "offered calls/s")
	flag.Float64Var(&astCPU, "asterisk-cpu", 0, "Asterisk CPU seconds over the run")
	flag.Float64Var(&cfCPU, "callfloor-cpu", -1, "callfloor CPU seconds over the run (<0: not running)")
	flag.Float64Var(&redisCPU, "redis-cpu", -1, "redis-server CPU seconds over the run (<0: not running)")
	flag.Float64Var(&events, "events", -1, "ARI events callfloor received over the run (<0: not running)")
	flag.Float64Var(&requests, "requests", -1, "ARI REST requests callfloor sent over the run (<0: not running)")
	flag.Parse()
	if header {
		fmt.Println("| side | calls/s | attempted | connected | failed | setup p50 | setup p95 | INVITE→100 Trying p95 | INVITE→agent INVITE p95 | Asterisk CPU/call | callfloor CPU/call | redis CPU/call | ARI events/call | REST requests/call | logs |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		return
	}
	if err := run(os.Stdout, callerPath, agentsPath, row{side: side, note: note, rate: rate, astCPU: astCPU,
		cfCPU: cfCPU, redisCPU: redisCPU, events: events, requests: requests}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type row struct {
	side, note                    string
	rate, astCPU, cfCPU, redisCPU float64
	events, requests              float64
}

func run(w io.Writer, callerPath, agentsPath string, r row) error {
	cf, err := os.Open(callerPath)
	if err != nil {
		return err
	}
	defer cf.Close()
	af, err := os.Open(agentsPath)
	if err != nil {
		return err
	}
	defer af.Close()
	c, err := readCalls(cf, af)
	if err != nil {
		return err
	}
	return writeRow(w, c, r)
}

// writeRow prints the table row of one run; figures measured around the
// run are divided by the calls attempted.
func writeRow(w io.Writer, c *calls, r row) error {
	s := c.setups()
	n := float64(len(c.invited))
	perCall := func(v float64, scale float64, unit string) string {
		if v < 0 || n == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f%s", v*scale/n, unit)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	_, err := fmt.Fprintf(w, "| %s | %g | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
		r.side, r.rate, len(c.invited), len(s), len(c.invited)-len(s), ms(quantile(s, 0.5)), ms(quantile(s, 0.95)),
		ms(quantile(c.since(c.trying), 0.95)), ms(quantile(c.since(c.agentInv), 0.95)),
		perCall(r.astCPU, 1000, " ms"), perCall(r.cfCPU, 1000, " ms"), perCall(r.redisCPU, 1000, " ms"),
		perCall(r.events, 1, ""), perCall(r.requests, 1, ""), r.note)
	return err
}
