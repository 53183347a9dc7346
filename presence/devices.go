package presence

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// DeviceLease is one registered device and when its registration lapses.
type DeviceLease struct {
	Device string
	Until  time.Time
}

// DeviceLeases is an agent's registered devices, sorted by name. It is
// stored and served as the JSON object {"device": "until", …} a map
// would give, byte for byte, but held as a slice: an agent has one or two
// devices, and a Go map per agent in each decoded copy of the floor was
// 15 MB of a 10,000-agent server's live heap (docs/performance.md,
// "Devices as a sorted slice").
type DeviceLeases []DeviceLease

// find is where device is, or would go.
func (d DeviceLeases) find(device string) (int, bool) {
	return slices.BinarySearchFunc(d, device, func(l DeviceLease, name string) int {
		return strings.Compare(l.Device, name)
	})
}

// set registers device until the given time, keeping the order. It may
// reuse d's array: callers hold their own copy (Agent.clone).
func (d DeviceLeases) set(device string, until time.Time) DeviceLeases {
	i, ok := d.find(device)
	if ok {
		d[i].Until = until
		return d
	}
	return slices.Insert(d, i, DeviceLease{Device: device, Until: until})
}

// MarshalJSON writes the leases as an object keyed by device, in the
// order and escaping encoding/json gives a map.
func (d DeviceLeases) MarshalJSON() ([]byte, error) {
	if d == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, l := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(l.Device)
		if err != nil {
			return nil, err
		}
		v, err := l.Until.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the object MarshalJSON writes (a repeated device
// keeps its last value, as a map would).
func (d *DeviceLeases) UnmarshalJSON(b []byte) error {
	var m map[string]time.Time
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		*d = nil
		return nil
	}
	out := make(DeviceLeases, 0, len(m))
	for k, v := range m {
		out = append(out, DeviceLease{Device: k, Until: v})
	}
	slices.SortFunc(out, func(a, b DeviceLease) int { return strings.Compare(a.Device, b.Device) })
	*d = out
	return nil
}
