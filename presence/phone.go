package presence

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// NormalizePhone turns a phone number as people enter it in the account's
// markets into E.164: "+84 90 100 0011" (international), "84901000011"
// (the country code without the plus) and "0901000011" (national, read in
// region, the account's default region such as "VN"). Spaces, dashes,
// dots and parentheses are separators. ok is false for anything else, for
// a national number when no region is set, and for a number that does
// not exist in the numbering plan (README.md, "Floor rules").
func NormalizePhone(s, region string) (e164 string, ok bool) {
	if s == "" || len(s) > 40 {
		return "", false
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", false
		}
	}
	d := b.String()
	var (
		n   *phonenumbers.PhoneNumber
		err error
	)
	switch {
	case len(d) < 3:
		return "", false
	case d[0] == '+':
		n, err = phonenumbers.Parse(d, "")
	case d[0] == '0':
		if region == "" {
			return "", false
		}
		n, err = phonenumbers.Parse(d, region)
	default:
		n, err = phonenumbers.Parse("+"+d, "")
	}
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// ValidRegion reports whether region is a region code the numbering plan
// knows ("VN", "US"), as the default_region setting must be.
func ValidRegion(region string) bool {
	_, ok := phonenumbers.GetSupportedRegions()[region]
	return ok
}

// NormalizePhone is NormalizePhone in the account's default region.
func (s *Service) NormalizePhone(number string) (string, bool) {
	return NormalizePhone(number, s.region)
}

// PhoneFormats says which forms are accepted, for error messages.
func (s *Service) PhoneFormats() string {
	if s.region == "" {
		return "give it in international form, like +84901000011 or 84901000011"
	}
	return "give it like +84901000011, 84901000011 or, in region " + s.region + ", a national number starting with 0"
}
