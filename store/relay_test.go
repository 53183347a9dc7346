package store

import (
	"testing"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/relay"
	"github.com/callfloor/callfloor/relay/relaytest"
)

func TestMemoryRelayContract(t *testing.T) {
	relaytest.Run(t, relaytest.Factory{
		New: func(t *testing.T) relay.Bus {
			m := NewMemory()
			t.Cleanup(func() { m.Close() })
			return m
		},
		Peer: func(t *testing.T, b relay.Bus) relay.Bus { return b },
	})
}

// TestRedisRelayContract: requester and server are separate clients of a
// real redis-server, like two replicas.
func TestRedisRelayContract(t *testing.T) {
	srv := testpeer.StartRedis(t)
	relaytest.Run(t, relaytest.Factory{
		New: func(t *testing.T) relay.Bus { return newTestRedis(t, srv) },
		Peer: func(t *testing.T, b relay.Bus) relay.Bus {
			return reopenTestRedis(t, srv, WithPrefix(b.(*Redis).opts.prefix))
		},
	})
}
