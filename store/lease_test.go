package store

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/lease/leasetest"
)

func TestMemoryLeaseContract(t *testing.T) {
	leasetest.Run(t, leasetest.Factory{
		New: func(t *testing.T) lease.Backend {
			m := NewMemory()
			t.Cleanup(func() { m.Close() })
			return m
		},
		Peer: func(t *testing.T, b lease.Backend) lease.Backend { return b },
	})
}

// TestRedisLeaseContract runs the suite on a real redis-server; Peer is a
// second client with the same prefix, like a second replica.
func TestRedisLeaseContract(t *testing.T) {
	srv := testpeer.StartRedis(t)
	leasetest.Run(t, leasetest.Factory{
		New: func(t *testing.T) lease.Backend { return newTestRedis(t, srv) },
		Peer: func(t *testing.T, b lease.Backend) lease.Backend {
			return reopenTestRedis(t, srv, WithPrefix(b.(*Redis).opts.prefix))
		},
	})
}

// TestRedisClusterLeaseContract: every lease key hashes to the store's slot.
func TestRedisClusterLeaseContract(t *testing.T) {
	srv := testpeer.StartRedis(t, testpeer.WithCluster())
	newCluster := func(t *testing.T, prefix string) *Redis {
		r := NewRedis(redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}}), WithPrefix(prefix))
		t.Cleanup(func() { r.Close() })
		return r
	}
	leasetest.Run(t, leasetest.Factory{
		New: func(t *testing.T) lease.Backend {
			return newCluster(t, fmt.Sprintf("{test%d}:", prefixes.Add(1)))
		},
		Peer: func(t *testing.T, b lease.Backend) lease.Backend { return newCluster(t, b.(*Redis).opts.prefix) },
	})
}
