// Package callfloor holds files bundled into the binary from the
// repository root: the demo floor configuration.
package callfloor

import _ "embed"

// DemoConfig is config.example.yaml, loaded when CALLFLOOR_CONFIG is unset.
//
//go:embed config.example.yaml
var DemoConfig []byte
