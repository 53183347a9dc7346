package api_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Streams, hubs, engines and browsers started by these tests must all be
// gone when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
