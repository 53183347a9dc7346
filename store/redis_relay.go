package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/relay"
	"github.com/callfloor/callfloor/state"
)

var _ relay.Bus = (*Redis)(nil)

// relayReplyTTL bounds how long an answer nobody took stays in Redis.
const relayReplyTTL = 30 * time.Second

// relayPoll is how often a request looks again for a server when nobody
// serves the channel (a takeover in progress).
const relayPoll = 50 * time.Millisecond

// Serve implements relay.Bus: SUBSCRIBE to the channel; each message is
// "<request id>:<payload>", and the answer is RPUSHed to the request's
// reply list.
func (r *Redis) Serve(ctx context.Context, channel string, h relay.Handler, ready chan<- struct{}) error {
	if r.isClosed() {
		return state.ErrClosed
	}
	ps := r.client.Subscribe(ctx, r.relayKey(channel))
	defer ps.Close()
	// The first reply confirms the subscription: from then on PUBLISH
	// counts this replica.
	if _, err := ps.Receive(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return r.wrap("relay subscribe", err)
	}
	if ready != nil {
		close(ready)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	msgs := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.bgCtx.Done():
			return nil
		case msg, ok := <-msgs:
			if !ok {
				return nil
			}
			id, payload, found := strings.Cut(msg.Payload, ":")
			if !found || id == "" {
				r.logger.Warn("relay: malformed request dropped", "channel", channel)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				answer := h(ctx, []byte(payload))
				// The answer goes back even if Serve is stopping: the
				// requester is waiting for it.
				actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				key := r.relayReplyKey(id)
				_, err := r.client.TxPipelined(actx, func(p redis.Pipeliner) error {
					p.RPush(actx, key, answer)
					p.PExpire(actx, key, relayReplyTTL)
					return nil
				})
				if err != nil {
					r.logger.Warn("relay: answer not delivered", "channel", channel, "err", err)
				}
			}()
		}
	}
}

// Request implements relay.Bus: PUBLISH until a server counts it (never
// again after that: at most once), then BLPOP the answer.
func (r *Redis) Request(ctx context.Context, channel string, req []byte) ([]byte, error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	msg := id + ":" + string(req)
	for {
		if r.isClosed() {
			return nil, state.ErrClosed
		}
		n, err := r.client.Publish(ctx, r.relayKey(channel), msg).Result()
		switch {
		case ctx.Err() != nil:
			return nil, relay.ErrNoServer
		case err != nil:
			return nil, r.wrap("relay publish", err)
		}
		if n > 0 {
			break
		}
		t := time.NewTimer(relayPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, relay.ErrNoServer
		case <-t.C:
		}
	}
	key := r.relayReplyKey(id)
	for {
		step := maxBlock
		if dl, ok := ctx.Deadline(); ok {
			step = min(time.Until(dl), maxBlock)
		}
		if step <= 0 {
			return nil, relay.ErrNoReply
		}
		res, err := r.client.Do(ctx, "BLPOP", key, strconv.FormatFloat(step.Seconds(), 'f', 3, 64)).StringSlice()
		switch {
		case err == nil && len(res) == 2:
			return []byte(res[1]), nil
		case err == nil, errors.Is(err, redis.Nil):
		case ctx.Err() != nil:
			return nil, relay.ErrNoReply
		default:
			return nil, r.wrap("relay answer", err)
		}
	}
}
