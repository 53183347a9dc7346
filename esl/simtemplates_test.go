package esl

import (
	"fmt"
	"strings"
	"testing"
)

// Event templates for the reactive fake (simfs_test.go): recorded event
// frames from eavesdrop.jsonl (FreeSWITCH 1.11.1), whose uuids and a few
// headers are rewritten for the channel at hand. Everything else — header
// order, URL encoding, the variable dump — is the recorded bytes.

const (
	tplCustomer = "870450d5-ccff-4814-8d65-7a1ca2819198" // the recording's caller
	tplAgent    = "1c874b14-ebec-40f5-9d8c-333eeac61b9f" // the recording's a1 leg
)

// templates maps "EVENT/direction" (and "CHANNEL_CALLSTATE/direction/STATE")
// to a recorded event body; "BACKGROUND_JOB" to a recorded job body.
type templates map[string]string

func loadTemplates(t testing.TB) templates {
	t.Helper()
	tpl := templates{}
	for _, l := range loadTranscript(t, "eavesdrop.jsonl") {
		if l.Dir != "in" || contentTypeOf(l.Raw) != typeEventPlain {
			continue
		}
		_, body, ok := strings.Cut(l.Raw, "\n\n")
		if !ok {
			t.Fatalf("template frame without body")
		}
		ev, err := parseEvent([]byte(body))
		if err != nil {
			t.Fatalf("template: %v", err)
		}
		name := ev.name()
		var key string
		switch uuid := ev.get("Unique-ID"); {
		case name == "BACKGROUND_JOB":
			key = name
		case uuid == tplCustomer || uuid == tplAgent:
			key = name + "/" + ev.get("Call-Direction")
			if name == "CHANNEL_CALLSTATE" {
				key += "/" + ev.get("Channel-Call-State")
			}
		default:
			continue
		}
		if _, dup := tpl[key]; !dup {
			tpl[key] = body
		}
	}
	for _, k := range []string{
		"CHANNEL_CREATE/inbound", "CHANNEL_CALLSTATE/inbound/RINGING", "CHANNEL_PARK/inbound",
		"CHANNEL_ANSWER/inbound", "CHANNEL_CALLSTATE/inbound/ACTIVE", "CHANNEL_BRIDGE/inbound",
		"CHANNEL_UNBRIDGE/inbound", "CHANNEL_HANGUP/inbound", "CHANNEL_HANGUP_COMPLETE/inbound",
		"CHANNEL_CREATE/outbound", "CHANNEL_CALLSTATE/outbound/RINGING", "CHANNEL_ANSWER/outbound",
		"CHANNEL_CALLSTATE/outbound/ACTIVE", "CHANNEL_PARK/outbound", "CHANNEL_HANGUP/outbound",
		"CHANNEL_HANGUP_COMPLETE/outbound", "BACKGROUND_JOB",
	} {
		if tpl[k] == "" {
			t.Fatalf("eavesdrop.jsonl has no %s event to use as a template", k)
		}
	}
	return tpl
}

// channelEvent renders event name for channel uuid (peer: the other leg
// the recording's body names, or "") with headers overridden. An event
// the recording only has for the other direction (an outbound A leg's
// CHANNEL_BRIDGE, in an outbound call) is cut from that one, with
// Call-Direction set. It returns "" (and the caller reports it) when the
// recording has neither.
func (tp templates) channelEvent(name string, inbound bool, uuid, peer string, set map[string]string) string {
	body, self, other, ok := tp.pick(name, inbound, set["Channel-Call-State"])
	if !ok {
		if body, self, other, ok = tp.pick(name, !inbound, set["Channel-Call-State"]); !ok {
			return ""
		}
		dir := map[bool]string{true: "inbound", false: "outbound"}[inbound]
		body = setHeader(body, "Call-Direction", dir)
		body = setHeader(body, "Caller-Direction", dir)
	}
	if peer == "" {
		peer = uuid
	}
	body = strings.ReplaceAll(body, self, uuid)
	body = strings.ReplaceAll(body, other, peer)
	for k, v := range set {
		body = setHeader(body, k, v)
	}
	return eventFrame(body)
}

// pick finds the template of name for a direction, and the recording's
// uuids of that leg (self) and its partner (other).
func (tp templates) pick(name string, inbound bool, callState string) (body, self, other string, ok bool) {
	dir, self, other := "outbound", tplAgent, tplCustomer
	if inbound {
		dir, self, other = "inbound", tplCustomer, tplAgent
	}
	key := name + "/" + dir
	if name == "CHANNEL_CALLSTATE" {
		key += "/" + callState
	}
	body, ok = tp[key]
	return body, self, other, ok
}

// jobEvent renders a BACKGROUND_JOB with result as its inner body.
func (tp templates) jobEvent(job, arg, result string, seq int) string {
	body := tp["BACKGROUND_JOB"]
	head, _, _ := strings.Cut(body, "\nContent-Length: ")
	head += "\n"
	head = setHeader(head, "Job-UUID", job)
	head = setHeader(head, "Job-Command-Arg", arg)
	head = setHeader(head, "Event-Sequence", fmt.Sprint(seq))
	return eventFrame(fmt.Sprintf("%sContent-Length: %d\n\n%s", head, len(result), result))
}

// eventFrame frames an event body as FreeSWITCH does: Content-Length first.
func eventFrame(body string) string {
	return fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(body), body)
}

// setHeader replaces (or adds, after the last header) "key: value" in an
// event header block, URL-encoding value the way FreeSWITCH does.
func setHeader(body, key, value string) string {
	enc := fsEncode(value)
	lines := strings.Split(body, "\n")
	last := -1
	for i, l := range lines {
		if l == "" {
			break
		}
		last = i
		if strings.HasPrefix(l, key+": ") {
			lines[i] = key + ": " + enc
			return strings.Join(lines, "\n")
		}
	}
	lines = append(lines[:last+1], append([]string{key + ": " + enc}, lines[last+1:]...)...)
	return strings.Join(lines, "\n")
}

// fsEncode is switch_url_encode's output for the values we set.
func fsEncode(s string) string {
	var b strings.Builder
	for _, r := range []byte(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.IndexByte("-_.~/", r) >= 0:
			b.WriteByte(r)
		default:
			fmt.Fprintf(&b, "%%%02X", r)
		}
	}
	return b.String()
}
