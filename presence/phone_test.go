package presence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/callfloor/callfloor/presence"
)

func TestNormalizePhone(t *testing.T) {
	for _, c := range []struct {
		in, region, want string
	}{
		{"+84901000011", "VN", "+84901000011"},
		{"+84 90 100 0011", "", "+84901000011"},
		{"84901000011", "", "+84901000011"},
		{"84901000011", "VN", "+84901000011"},
		{"0901000011", "VN", "+84901000011"},
		{"090-100-0011", "VN", "+84901000011"},
		{"(028) 7300 0001", "VN", "+842873000001"},
		{"0084901000011", "VN", "+84901000011"},
		{"+14155552671", "VN", "+14155552671"},
		{"0901000011", "", ""},       // national without a region
		{"901000011", "VN", ""},      // neither international nor national
		{"+84", "VN", ""},            // too short
		{"12345", "VN", ""},          // no such country code
		{"+999999999999", "", ""},    // not in the numbering plan
		{"tel:+84901000011", "", ""}, // not a number as entered
		{"+84901000011x", "", ""},
		{"84+901000011", "", ""},
		{"", "VN", ""},
	} {
		got, ok := presence.NormalizePhone(c.in, c.region)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q", c.in, c.region, got, ok, c.want)
		}
	}
	if !presence.ValidRegion("VN") || presence.ValidRegion("XX") || presence.ValidRegion("vn") {
		t.Error("ValidRegion")
	}
}

// FuzzNormalizePhone: whatever is entered, the result is either refused
// or a valid E.164 number that normalises to itself.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+84901000011", "84901000011", "0901000011", "(028) 7300 0001", "0084901000011", "+1", "", "++84", "0"} {
		f.Add(s, "VN")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, in, region string) {
		if !presence.ValidRegion(region) {
			region = ""
		}
		out, ok := presence.NormalizePhone(in, region)
		if !ok {
			if out != "" {
				t.Fatalf("refused %q but returned %q", in, out)
			}
			return
		}
		if !presence.ValidE164(out) {
			t.Fatalf("NormalizePhone(%q, %q) = %q, not E.164", in, region, out)
		}
		if again, ok := presence.NormalizePhone(out, region); !ok || again != out {
			t.Fatalf("NormalizePhone(%q) = %q, %v; want itself", out, again, ok)
		}
	})
}

// Agent create and patch accept the market's forms, store E.164, and
// refuse anything else with a 422 naming the field.
func TestAgentPhoneStoredAsE164(t *testing.T) {
	svc, _, _ := floor(t, presence.WithDefaultRegion("VN"))
	ctx := context.Background()
	a, err := svc.CreateAgent(ctx, admin, presence.AgentInput{ID: ptr("a9"), Name: ptr("N"), Email: ptr("a9@example.com"), Phone: ptr("0901 000 099")})
	if err != nil || a.Phone != "+84901000099" {
		t.Fatalf("create with a national number: %q, %v", a.Phone, err)
	}
	for _, c := range []struct{ in, want string }{{"84901000098", "+84901000098"}, {"+84 90 100 0097", "+84901000097"}} {
		a, err := svc.UpdateAgent(ctx, admin, "a9", presence.AgentInput{Phone: ptr(c.in)})
		if err != nil || a.Phone != c.want {
			t.Fatalf("patch %q: %q, %v; want %q", c.in, a.Phone, err, c.want)
		}
	}
	for _, bad := range []string{"12345", "901000011", "phone", ""} {
		_, err := svc.UpdateAgent(ctx, admin, "a9", presence.AgentInput{Phone: ptr(bad)})
		var fe *presence.FieldError
		if !errors.As(err, &fe) || fe.Field != "phone" || !errors.Is(err, presence.ErrUnprocessable) {
			t.Fatalf("patch %q: %v, want a 422 naming phone", bad, err)
		}
	}
	if a, _ := svc.Agent(ctx, "a9"); a.Phone != "+84901000097" {
		t.Fatalf("refused patches changed the phone to %q", a.Phone)
	}
	// Without a default region a national number is refused.
	plain, _, _ := floor(t)
	if _, err := plain.UpdateAgent(ctx, admin, "a1", presence.AgentInput{Phone: ptr("0901000011")}); !errors.Is(err, presence.ErrUnprocessable) {
		t.Fatalf("national number without a region: %v", err)
	}
}
