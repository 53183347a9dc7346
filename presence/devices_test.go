package presence

import (
	"encoding/json"
	"testing"
	"time"
)

// The leases must read and write exactly what the map they replaced did:
// stored agents and the API's bodies keep their bytes, and "no change"
// is decided by comparing encodings (Service.mutateOnce).
func TestDeviceLeasesEncodeAsTheMapDid(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 13, 0, 0, 123, time.UTC)
	for _, m := range []map[string]time.Time{
		nil,
		{},
		{"a1-app": t0},
		{"a1-desk": t0.Add(time.Hour), "a1-app": t0, "<&>\"x\u2028": t0.Add(-time.Second)},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var d DeviceLeases
		if err := json.Unmarshal(want, &d); err != nil {
			t.Fatalf("decode %s: %v", want, err)
		}
		got, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("leases encode as %s, the map as %s", got, want)
		}
		for k, v := range m {
			if i, ok := d.find(k); !ok || !d[i].Until.Equal(v) {
				t.Errorf("device %q: found %v, want until %v in %+v", k, ok, v, d)
			}
		}
	}
	var a Agent
	if err := json.Unmarshal([]byte(`{"devices":{"b":"2026-12-05T13:00:00Z","a":"2026-12-05T14:00:00Z","b":"2026-12-05T15:00:00Z"}}`), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Devices) != 2 || a.Devices[0].Device != "a" || a.Devices[1].Until.Hour() != 15 {
		t.Errorf("a repeated device keeps its last value, in order: %+v", a.Devices)
	}
	if b, _ := json.Marshal(Agent{}); containsDevices(b) {
		t.Errorf("an agent with no devices has no devices field: %s", b)
	}
}

func containsDevices(b []byte) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	_, ok := m["devices"]
	return ok
}

func TestSetDeviceKeepsOrderAndDropsLapsed(t *testing.T) {
	now := time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)
	var a Agent
	setDevice(&a, "desk", true, now.Add(time.Minute), now)
	setDevice(&a, "app", true, now.Add(2*time.Minute), now)
	setDevice(&a, "zz", true, now.Add(time.Second), now)
	if len(a.Devices) != 3 || a.Devices[0].Device != "app" || a.Devices[2].Device != "zz" || !a.DeviceUntil.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("devices %+v until %v", a.Devices, a.DeviceUntil)
	}
	c := a.clone()
	setDevice(&c, "app", true, now.Add(time.Hour), now)
	if i, _ := a.Devices.find("app"); !a.Devices[i].Until.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("changing a clone changed the original: %+v", a.Devices)
	}
	// Two seconds on: zz lapsed; the desk phone unregisters.
	setDevice(&a, "desk", false, time.Time{}, now.Add(2*time.Second))
	if len(a.Devices) != 1 || a.Devices[0].Device != "app" {
		t.Fatalf("after desk left and zz lapsed: %+v", a.Devices)
	}
	setDevice(&a, "app", false, time.Time{}, now.Add(3*time.Second))
	if a.Devices != nil || !a.DeviceUntil.IsZero() {
		t.Fatalf("no device left: %+v, until %v", a.Devices, a.DeviceUntil)
	}
}

func FuzzDeviceLeasesJSON(f *testing.F) {
	f.Add([]byte(`{"a1-app":"2026-12-05T13:00:00Z"}`))
	f.Add([]byte(`{"b":"2026-12-05T13:00:00.5+07:00","a":"2026-12-05T14:00:00Z"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"\u00e9\ud800":"2026-12-05T13:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m map[string]time.Time
		mErr := json.Unmarshal(b, &m)
		var d DeviceLeases
		dErr := json.Unmarshal(b, &d)
		if (mErr == nil) != (dErr == nil) {
			t.Fatalf("%q: map error %v, leases error %v", b, mErr, dErr)
		}
		if mErr != nil {
			return
		}
		want, err1 := json.Marshal(m)
		got, err2 := json.Marshal(d)
		if (err1 == nil) != (err2 == nil) || string(got) != string(want) {
			t.Fatalf("%q: leases encode as %s (%v), the map as %s (%v)", b, got, err2, want, err1)
		}
	})
}
