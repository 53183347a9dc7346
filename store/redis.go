package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/state"
)

// Redis is the state.StoreLog on Redis (standalone, Sentinel or Cluster).
// Every Commit is one Lua script, so a Tx is atomic and replicas sharing
// the server see it whole. The event log is a Redis Stream.
//
// Key layout under the prefix P (default DefaultRedisPrefix):
//
//	P rec:<kind>    hash   v:<id> = version, d:<id> = data; #seq = the
//	                       kind's last write number, #drop = the newest
//	                       deletion number forgotten (redis_changes.go)
//	P chg:<kind>    zset   id scored by the number of its last write
//	P del:<kind>    zset   deleted id scored by its deletion's number
//	P ser:<name>    zset   "<20-digit seq>:<data>" scored by Entry.Score
//	P sseq:<name>   string the series' last sequence number
//	P cnt:<name>    hash   field = counter value
//	P log           stream the event log, IDs "n-0" for the n-th event
//	P due:<index>   zset   member scored by its due time (Unix ms)
//	P lease:<name>  hash   holder, token of the current grant; expires with it
//	P leasetok:<name> string the last fencing token issued (never expires)
//	P leasefree:<name> list a wake-up pushed on release, popped by a waiter
//	P relay:<channel>  pub/sub channel of relay requests (package relay)
//	P relayreply:<id>  list holding one relay answer until it is popped
//
// Series scores are Redis doubles: exact for |score| < 2^53, which Unix
// milliseconds are.
type Redis struct {
	client redis.UniversalClient
	opts   options
	trim   string // "~" or "="
	logger *slog.Logger

	mu     sync.Mutex
	closed bool
	tail   tail // guarded by mu; see redis_tail.go

	// bgCtx ends on Close; it bounds the tail watcher, which bg tracks.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

var _ state.StoreLog = (*Redis)(nil)

// NewRedis returns a store on client, which it owns from now on: Close
// closes it. Options: WithPrefix, WithRetention (default
// DefaultRedisRetention), WithExactTrim, WithLogger, WithObserver (times
// every command through a go-redis hook).
func NewRedis(client redis.UniversalClient, opts ...RedisOption) *Redis {
	o := buildOptions(DefaultRedisRetention, opts)
	trim := "~"
	if o.exactTrim {
		trim = "="
	}
	r := &Redis{client: client, opts: o, trim: trim, logger: o.logger}
	if _, none := o.observer.(nopObserver); !none {
		client.AddHook(commandHook{obs: o.observer})
	}
	r.tail.changed = make(chan struct{})
	r.bgCtx, r.bgCancel = context.WithCancel(context.Background())
	return r
}

func (r *Redis) recordKey(kind state.Kind) string { return r.opts.prefix + "rec:" + string(kind) }
func (r *Redis) changesKey(kind state.Kind) string {
	return r.opts.prefix + "chg:" + string(kind)
}
func (r *Redis) deletionsKey(kind state.Kind) string {
	return r.opts.prefix + "del:" + string(kind)
}
func (r *Redis) seriesKey(name string) string     { return r.opts.prefix + "ser:" + name }
func (r *Redis) seriesSeqKey(name string) string  { return r.opts.prefix + "sseq:" + name }
func (r *Redis) counterKey(name string) string    { return r.opts.prefix + "cnt:" + name }
func (r *Redis) logKey() string                   { return r.opts.prefix + "log" }
func (r *Redis) dueKey(index string) string       { return r.opts.prefix + "due:" + index }
func (r *Redis) leaseKey(name string) string      { return r.opts.prefix + "lease:" + name }
func (r *Redis) leaseTokenKey(name string) string { return r.opts.prefix + "leasetok:" + name }
func (r *Redis) leaseFreeKey(name string) string  { return r.opts.prefix + "leasefree:" + name }
func (r *Redis) relayKey(channel string) string   { return r.opts.prefix + "relay:" + channel }
func (r *Redis) relayReplyKey(id string) string   { return r.opts.prefix + "relayreply:" + id }

// seriesSeqLen is the length of a series member's "<seq>:" prefix.
const seriesSeqLen = 21

func (r *Redis) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// wrap adds context to a Redis error and says what it means: a closed
// client is state.ErrClosed, an unreachable server state.ErrUnavailable
// (see unavailable).
func (r *Redis) wrap(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) || r.isClosed() {
		return fmt.Errorf("redis store: %s: %w", op, state.ErrClosed)
	}
	if unavailable(err) {
		return fmt.Errorf("redis store: %s: %w: %w", op, state.ErrUnavailable, err)
	}
	return fmt.Errorf("redis store: %s: %w", op, err)
}

// unavailable is the one place that decides whether a Redis error means
// "the server cannot be reached now, try again later" rather than a bug,
// a bad request or a refused credential: network errors (refused, reset,
// timeouts, EOF), the client's pool timeout, and the server replies that
// say it is loading, failing over or read-only after a failover.
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted):
		return true
	}
	msg := err.Error()
	for _, p := range []string{"LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "READONLY ", "connection refused"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// Get implements state.Store.
func (r *Redis) Get(ctx context.Context, kind state.Kind, id string) (state.Record, error) {
	if r.isClosed() {
		return state.Record{}, state.ErrClosed
	}
	vals, err := r.client.HMGet(ctx, r.recordKey(kind), "v:"+id, "d:"+id).Result()
	if err != nil {
		return state.Record{}, r.wrap("get", err)
	}
	v, ok := vals[0].(string)
	if !ok {
		return state.Record{}, fmt.Errorf("%s %q: %w", kind, id, state.ErrNotFound)
	}
	version, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return state.Record{}, fmt.Errorf("redis store: %s %q: bad version %q", kind, id, v)
	}
	data, _ := vals[1].(string)
	return state.Record{Kind: kind, ID: id, Version: version, Data: []byte(data)}, nil
}

// List implements state.Store.
func (r *Redis) List(ctx context.Context, kind state.Kind) ([]state.Record, error) {
	if r.isClosed() {
		return nil, state.ErrClosed
	}
	fields, err := r.client.HGetAll(ctx, r.recordKey(kind)).Result()
	if err != nil {
		return nil, r.wrap("list", err)
	}
	recs := make([]state.Record, 0, len(fields)/2)
	for f, v := range fields {
		id, ok := strings.CutPrefix(f, "v:")
		if !ok {
			continue
		}
		version, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis store: %s %q: bad version %q", kind, id, v)
		}
		recs = append(recs, state.Record{Kind: kind, ID: id, Version: version, Data: []byte(fields["d:"+id])})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, nil
}

// Series implements state.Store.
func (r *Redis) Series(ctx context.Context, series string, minScore, maxScore int64, limit int) ([]state.Entry, error) {
	if r.isClosed() {
		return nil, state.ErrClosed
	}
	if minScore > maxScore {
		return []state.Entry{}, nil
	}
	args := redis.ZRangeArgs{
		Key:     r.seriesKey(series),
		Start:   strconv.FormatInt(minScore, 10),
		Stop:    strconv.FormatInt(maxScore, 10),
		ByScore: true,
	}
	if limit > 0 {
		args.Count = int64(limit)
	}
	zs, err := r.client.ZRangeArgsWithScores(ctx, args).Result()
	if err != nil {
		return nil, r.wrap("series", err)
	}
	out := make([]state.Entry, 0, len(zs))
	for _, z := range zs {
		member, _ := z.Member.(string)
		if len(member) < seriesSeqLen {
			return nil, fmt.Errorf("redis store: series %q: malformed member %q", series, member)
		}
		out = append(out, state.Entry{Score: int64(math.Round(z.Score)), Data: []byte(member[seriesSeqLen:])})
	}
	return out, nil
}

// Counters implements state.Store.
func (r *Redis) Counters(ctx context.Context, counter string) (map[string]int64, error) {
	if r.isClosed() {
		return nil, state.ErrClosed
	}
	fields, err := r.client.HGetAll(ctx, r.counterKey(counter)).Result()
	if err != nil {
		return nil, r.wrap("counters", err)
	}
	out := make(map[string]int64, len(fields))
	for f, v := range fields {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis store: counter %q field %q: bad value %q", counter, f, v)
		}
		out[f] = n
	}
	return out, nil
}

// Due implements state.Store with ZRANGEBYSCORE on the index.
func (r *Redis) Due(ctx context.Context, index string, until int64, limit int) ([]state.Due, error) {
	if r.isClosed() {
		return nil, state.ErrClosed
	}
	args := redis.ZRangeArgs{
		Key: r.dueKey(index), Start: "-inf", Stop: strconv.FormatInt(until, 10), ByScore: true,
	}
	if limit > 0 {
		args.Count = int64(limit)
	}
	zs, err := r.client.ZRangeArgsWithScores(ctx, args).Result()
	if err != nil {
		return nil, r.wrap("due", err)
	}
	out := make([]state.Due, 0, len(zs))
	for _, z := range zs {
		member, _ := z.Member.(string)
		out = append(out, state.Due{Member: member, At: int64(z.Score)})
	}
	return out, nil
}

// Ping implements state.Store with PING.
func (r *Redis) Ping(ctx context.Context) error {
	if r.isClosed() {
		return state.ErrClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.wrap("ping", err)
	}
	return nil
}

// Close ends waiting readers (they get state.ErrClosed), stops the tail
// watcher and waits for it, and closes the client.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.tail.changed) // waiting readers wake and see closed
	r.mu.Unlock()
	r.bgCancel()
	r.bg.Wait()
	if err := r.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redis store: close: %w", err)
	}
	return nil
}
