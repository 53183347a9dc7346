package presence

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits (SECURITY.md): every name, device, e-mail and list an API
// caller can store is bounded, so no record grows without limit and no
// control character reaches a dashboard, a log line or a SIP header.
const (
	MaxNameLen  = 200 // characters of an agent, group, status or queue name
	MaxEmailLen = 254 // RFC 5321's path limit
	MaxListLen  = 100 // groups per agent, supervisors per group
)

// devicePattern is what a device (dial string or SIP URI) may contain:
// "PJSIP/a1", "user/a1", "sofia/gateway/trunk/+84…", "sip:a1@host:5060;transport=tcp".
var devicePattern = regexp.MustCompile(`^[A-Za-z0-9._~:@+/;=#*\-]{1,256}$`)

// CheckName validates a human-readable name: valid UTF-8 with no control,
// format or replacement characters, not blank, at most max characters.
func CheckName(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if strings.TrimSpace(s) == "" {
		return invalid(field, "must not be empty")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, fmt.Sprintf("must be at most %d characters (got %d)", max, n))
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return invalid(field, fmt.Sprintf("must not contain control or invisible characters (found %U)", r))
		}
	}
	return nil
}

// CheckDevice validates a device string (an agent's device, a monitor's
// device): at most 256 characters of letters, digits and . _ ~ : @ + / ; = # * -.
func CheckDevice(field, s string) error {
	if !devicePattern.MatchString(s) {
		return invalid(field, "must be 1-256 characters of letters, digits and . _ ~ : @ + / ; = # * - (a dial string or SIP URI)")
	}
	return nil
}

// checkList bounds a list of ids and checks each.
func checkList(field string, ids []string) error {
	if len(ids) > MaxListLen {
		return invalid(field, fmt.Sprintf("must have at most %d entries", MaxListLen))
	}
	for _, id := range ids {
		if err := checkID(field, id); err != nil {
			return err
		}
	}
	return nil
}
