package store

import (
	"testing"

	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/state/statetest"
)

func TestMemoryContract(t *testing.T) {
	statetest.Run(t, statetest.Factory{
		New: func(t *testing.T) state.StoreLog {
			m := NewMemory()
			t.Cleanup(func() { m.Close() })
			return m
		},
		NewRetaining: func(t *testing.T, retention int) state.StoreLog {
			m := NewMemory(WithRetention(retention))
			t.Cleanup(func() { m.Close() })
			return m
		},
		// Reopen is nil: the memory store keeps nothing across instances.
	})
}
