package reports

import "testing"

// FuzzDecodeCursor: any string decodes or fails with ErrBadCursor; what
// encodeCursor issues always decodes back.
func FuzzDecodeCursor(f *testing.F) {
	f.Add("", int64(0), "c1")
	f.Add("MTow", int64(1795251600000), "c-1795251600000-1/a1")
	f.Fuzz(func(t *testing.T, s string, ms int64, id string) {
		_, _, _ = DecodeCursor(s)
		if id == "" {
			return
		}
		gotMS, gotID, err := DecodeCursor(encodeCursor(ms, id))
		if err != nil || gotMS != ms || gotID != id {
			t.Fatalf("round trip %d %q → %d %q %v", ms, id, gotMS, gotID, err)
		}
	})
}

// Who ended a call, for every end reason routing writes.
func TestHungUpBy(t *testing.T) {
	for reason, want := range map[string]string{
		"caller hung up": "customer", "customer hung up": "customer", "agent hung up": "agent",
		"hung up by sup-sales": "sup-sales", "nobody answered": "system", "the agent did not answer (no_answer)": "system",
		"the media path could not connect the call: boom": "system", "": "system",
	} {
		if got := HungUpBy(reason); got != want {
			t.Errorf("HungUpBy(%q) = %q; want %q", reason, got, want)
		}
	}
}
