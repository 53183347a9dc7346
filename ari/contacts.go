package ari

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A dial to PJSIP/<aor> rings only one of the AOR's contacts (seen on a
// real Asterisk 22.10.1 with a web and a mobile softphone registered
// under one user), so a device with several contacts is dialled as one
// fork per contact, PJSIP/<aor>/<contact URI>, each its own channel of
// the same leg.
//
// The contacts are read when a device is dialled, as Asterisk's
// PJSIP_DIAL_CONTACTS(<endpoint>) (its reachable contacts, "&"-joined
// dial strings), and kept for contactsMaxAge. They used to come from the
// ContactStatusChange events of an endpoint subscription, but such a
// subscription also forwards every message of every channel on the
// endpoint through Asterisk's one queue for the application — a third
// of that queue's work per call, and the queue is what bounds a floor
// at 200 calls/s (docs/performance.md, "Asterisk side by side with
// app_queue"). ARI evaluates a dialplan function only on a channel
// (GET /asterisk/variable reads plain globals), and PJSIP_DIAL_CONTACTS
// does not use its channel, so the read goes through the customer's
// channel, or any channel of ours; with none, the AOR is dialled and one
// contact rings, as before any contacts were known.

// DefaultContactsMaxAge is how long a device's contacts, once read, are
// used for its dials before being read again.
const DefaultContactsMaxAge = 10 * time.Second

// WithContactsMaxAge sets how long a device's contacts are kept (default
// DefaultContactsMaxAge): a softphone registering as a second contact
// rings at the latest this long after. Zero reads them on every dial.
func WithContactsMaxAge(d time.Duration) Option {
	return func(c *Client) { c.contactsMaxAge = d }
}

// contactSet is what a device is dialled as, and when that was read.
type contactSet struct {
	forks []string
	read  time.Time
}

// pjsipEndpointName is a PJSIP endpoint name that goes into
// PJSIP_DIAL_CONTACTS(…) as it is: nothing the function's argument
// parser or a URL would split on.
var pjsipEndpointName = regexp.MustCompile(`^[A-Za-z0-9._+~-]+$`)

// contactForks is what a device's SIP user is dialled as: one fork per
// reachable contact when its endpoint has several, else the endpoint
// itself. customer is the channel the dial is for, if any (the read goes
// through it first).
func (c *Client) contactForks(ctx context.Context, user, customer string) []string {
	endpoint := c.cfg.DeviceFor(user)
	name, ok := strings.CutPrefix(endpoint, "PJSIP/")
	if !ok || !pjsipEndpointName.MatchString(name) {
		return []string{endpoint}
	}
	c.mu.Lock()
	set, ok := c.contacts[endpoint]
	via := c.channelForReadLocked(customer)
	c.mu.Unlock()
	if ok && time.Since(set.read) < c.contactsMaxAge {
		return set.forks
	}
	if via == "" {
		return []string{endpoint}
	}
	forks, err := c.readContacts(ctx, via, name, endpoint)
	if err != nil {
		// The channel may have hung up meanwhile (404): the AOR rings
		// one contact, and the next dial reads again.
		if !errors.Is(err, context.Canceled) {
			c.log.Debug("reading a device's contacts failed; dialling its AOR", "device", endpoint, "err", err)
		}
		return []string{endpoint}
	}
	c.mu.Lock()
	c.contacts[endpoint] = contactSet{forks: forks, read: time.Now()}
	c.mu.Unlock()
	return forks
}

// readContacts asks Asterisk for the reachable contacts of PJSIP
// endpoint name (endpoint is "PJSIP/<name>").
func (c *Client) readContacts(ctx context.Context, via, name, endpoint string) ([]string, error) {
	var v struct {
		Value string `json:"value"`
	}
	if err := c.rest.do(ctx, "GET", "/channels/"+url.PathEscape(via)+"/variable",
		url.Values{"variable": {"PJSIP_DIAL_CONTACTS(" + name + ")"}}, &v); err != nil {
		return nil, err
	}
	return parseDialContacts(v.Value, endpoint), nil
}

// parseDialContacts turns PJSIP_DIAL_CONTACTS' value into forks: each
// "PJSIP/<name>/<contact URI>" of this endpoint, sorted; the endpoint
// itself unless there are two or more (one contact rings anyway, and
// none means Asterisk decides when dialled).
func parseDialContacts(value, endpoint string) []string {
	var forks []string
	for s := range strings.SplitSeq(value, "&") {
		if uri, ok := strings.CutPrefix(s, endpoint+"/"); ok && uri != "" && !slices.Contains(forks, s) {
			forks = append(forks, s)
		}
	}
	if len(forks) < 2 {
		return []string{endpoint}
	}
	slices.Sort(forks)
	return forks
}

// channelForReadLocked picks the channel a function is evaluated on: the
// customer's, else any live channel of ours (under c.mu).
func (c *Client) channelForReadLocked(customer string) string {
	if l := c.legs[customer]; l != nil && !l.ended() && l.live != "" {
		return l.live
	}
	for _, l := range c.legs {
		if !l.ended() && l.live != "" && l.kind != kindSnoop {
			return l.live
		}
	}
	return ""
}

// forgetContacts drops what is known of an endpoint's contacts (a
// contact changed, or the device went away, onDevice): its next dial
// reads them again (under c.mu).
func (c *Client) forgetContacts(endpoint string) {
	delete(c.contacts, endpoint)
}
