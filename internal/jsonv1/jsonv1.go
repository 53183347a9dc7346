// Package jsonv1 decodes JSON with encoding/json's meaning (v1: field
// names matched case-insensitively, invalid UTF-8 replaced, duplicate
// names allowed, UnmarshalJSON methods honoured) at the speed of
// github.com/go-json-experiment/json, the implementation behind Go's
// encoding/json/v2: 10.5 → 6.0 µs and 33 → 14 allocations for an ARI
// event (ari's BenchmarkDecodeCommon). Used by the decoders on the hot
// path of every call — ARI events, call, agent and queue records, the
// agent views routing watches and the events reports project — where
// decoding was a sixth of callfloor's CPU on Asterisk at 100 calls/s
// (docs/performance.md, "Asterisk side by side with app_queue").
package jsonv1

import (
	json "github.com/go-json-experiment/json"
	v1 "github.com/go-json-experiment/json/v1"
)

var options = v1.DefaultOptionsV1()

// Unmarshal is encoding/json.Unmarshal.
func Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v, options)
}
