package ari

import (
	"slices"
	"strings"
)

// A dial to PJSIP/<aor> rings only one of the AOR's contacts (seen on a
// real Asterisk 22.10.1 with a web and a mobile softphone registered
// under one user), so a device with several contacts is dialled as one
// fork per contact, PJSIP/<aor>/<contact URI>, each its own channel of
// the same leg. The contacts come from ContactStatusChange events of the
// endpoint subscription; until a restarted controller has seen a device's
// contacts (re)register, it dials the AOR and one contact rings.

// onContact records a contact's status (under c.mu).
func (c *Client) onContact(aor, uri, status string) {
	if aor == "" || uri == "" {
		return
	}
	switch status {
	case "Removed", "Unreachable":
		delete(c.contacts[aor], uri)
		if len(c.contacts[aor]) == 0 {
			delete(c.contacts, aor)
		}
	default: // Created, Reachable, NonQualified, Unknown, Updated
		if c.contacts[aor] == nil {
			c.contacts[aor] = map[string]bool{}
		}
		c.contacts[aor][uri] = true
	}
}

// contactForks is what a device's SIP user is dialled as: one fork per
// known contact when it has several, else the endpoint itself.
func (c *Client) contactForks(user string) []string {
	endpoint := c.cfg.DeviceFor(user)
	c.mu.Lock()
	uris := make([]string, 0, len(c.contacts[user]))
	for u := range c.contacts[user] {
		uris = append(uris, u)
	}
	c.mu.Unlock()
	if len(uris) < 2 || !strings.HasPrefix(endpoint, "PJSIP/") {
		return []string{endpoint}
	}
	slices.Sort(uris)
	out := make([]string, len(uris))
	for i, u := range uris {
		out[i] = endpoint + "/" + u
	}
	return out
}
