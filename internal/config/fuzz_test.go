package config

import (
	"testing"

	"github.com/callfloor/callfloor"
)

// FuzzParse: any bytes either parse or return an error; never a panic.
// A parsed config must survive defaults and validation without panicking.
func FuzzParse(f *testing.F) {
	f.Add(callfloor.DemoConfig)
	f.Add([]byte("http_addr: 127.0.0.1:1\nagents:\n  - {id: a1, token: abcdef}\n"))
	f.Add([]byte("queues: [{id: q, ring_timeout_seconds: -1}]"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("timezone: 7\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		cfg.applyDefaults()
		_ = cfg.Validate()
		_ = cfg.Media()
		_ = cfg.SIPPasswords()
		_ = cfg.Location()
	})
}
