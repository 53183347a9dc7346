package jsonv1

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type custom string

func (c *custom) UnmarshalJSON(b []byte) error { *c = custom("via method: " + string(b)); return nil }

type record struct {
	ID     string            `json:"id"`
	N      int               `json:"n"`
	At     time.Time         `json:"at"`
	When   *time.Time        `json:"when"`
	Tags   []string          `json:"tags"`
	Vars   map[string]string `json:"vars"`
	Skip   map[string]time.Time
	Custom custom          `json:"custom"`
	Inner  *record         `json:"inner"`
	Raw    json.RawMessage `json:"raw"`
	Any    any             `json:"any"`
}

// decodeBoth decodes in with this package and with encoding/json.
func decodeBoth(in []byte) (got, want record, gotErr, wantErr error) {
	gotErr = Unmarshal(in, &got)
	wantErr = json.Unmarshal(in, &want)
	return
}

// What v1 accepts and v2 by default would not — names in another case,
// invalid UTF-8, a name twice — decodes as encoding/json decodes it.
func TestLikeEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"id":"c1","n":3,"at":"2026-12-06T09:00:00.123+07:00","tags":["a","b"],"vars":{"k":"v"},"custom":"x","inner":{"ID":"c2"},"raw":{"a":[1,2]},"any":{"b":1.5}}`,
		`{"ID":"upper","N":1,"Skip":{"a1":"2026-12-06T09:00:00Z"}}`,
		"{\"id\":\"bad \xff utf-8\"}",
		`{"id":"first","id":"second"}`,
		`{"id":"x","unknown":{"deep":[1,{"x":null}]}}`,
		`{"when":null,"tags":null,"vars":null}`,
	} {
		got, want, gotErr, wantErr := decodeBoth([]byte(in))
		if (gotErr != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v (%v)\nwant %+v (%v)", in, got, gotErr, want, wantErr)
		}
	}
}

// Whatever the input, the decoded value is encoding/json's whenever
// encoding/json accepts it.
func FuzzLikeEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"id":"c1","n":3,"tags":["a"],"vars":{"k":"v"},"inner":{"id":"c2"}}`))
	f.Add([]byte(`{"ID":"x","Skip":{"a":"2026-12-06T09:00:00Z"},"custom":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, want, gotErr, wantErr := decodeBoth(in)
		if wantErr == nil && (gotErr != nil || !reflect.DeepEqual(got, want)) {
			t.Fatalf("%q:\n got %+v (%v)\nwant %+v", in, got, gotErr, want)
		}
	})
}
