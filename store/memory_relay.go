package store

import (
	"context"
	"sync"

	"github.com/callfloor/callfloor/relay"
	"github.com/callfloor/callfloor/state"
)

var _ relay.Bus = (*Memory)(nil)

// memRelay is the memory store's relay.Bus: requests call the serving
// handler directly.
type memRelay struct {
	mu      sync.Mutex
	servers map[string]*memServer
	// changed is closed and replaced when a server starts.
	changed chan struct{}
}

type memServer struct {
	ctx context.Context
	h   relay.Handler
	wg  sync.WaitGroup
}

func (r *memRelay) init() {
	if r.servers == nil {
		r.servers = map[string]*memServer{}
		r.changed = make(chan struct{})
	}
}

// Serve implements relay.Bus.
func (m *Memory) Serve(ctx context.Context, channel string, h relay.Handler, ready chan<- struct{}) error {
	if err := m.Ping(ctx); err != nil {
		return err
	}
	r := &m.relay
	srv := &memServer{ctx: ctx, h: h}
	r.mu.Lock()
	r.init()
	r.servers[channel] = srv
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if ready != nil {
		close(ready)
	}
	select {
	case <-ctx.Done():
	case <-m.done:
	}
	r.mu.Lock()
	if r.servers[channel] == srv {
		delete(r.servers, channel)
	}
	r.mu.Unlock()
	srv.wg.Wait()
	return nil
}

// Request implements relay.Bus.
func (m *Memory) Request(ctx context.Context, channel string, req []byte) ([]byte, error) {
	r := &m.relay
	for {
		r.mu.Lock()
		r.init()
		srv, changed := r.servers[channel], r.changed
		if srv != nil {
			srv.wg.Add(1)
		}
		r.mu.Unlock()
		if srv != nil {
			res := make(chan []byte, 1)
			go func() {
				defer srv.wg.Done()
				res <- srv.h(srv.ctx, cloneBytes(req))
			}()
			select {
			case out := <-res:
				return out, nil
			case <-ctx.Done():
				return nil, relay.ErrNoReply
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, relay.ErrNoServer
		case <-m.done:
			return nil, state.ErrClosed
		}
	}
}
