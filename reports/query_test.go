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
