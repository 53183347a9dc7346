package store

import "log/slog"

// Default event retention of each backend (events kept in the log).
const (
	DefaultMemoryRetention = 10000
	DefaultRedisRetention  = 100000
	// DefaultRedisPrefix is the key prefix of the Redis store. The hash tag
	// {callfloor} puts every key in one Cluster slot, which the multi-key
	// commit script needs.
	DefaultRedisPrefix = "{callfloor}:"
)

// Option configures a store. Options that only one backend understands say
// so and are ignored by the other.
type Option func(*options)

// MemoryOption configures NewMemory.
type MemoryOption = Option

// RedisOption configures NewRedis.
type RedisOption = Option

type options struct {
	retention int
	prefix    string
	exactTrim bool
	logger    *slog.Logger
	observer  Observer
}

// WithRetention sets how many of the newest events the log keeps; n < 1
// is ignored (the backend default stays). On Redis the default trimming is
// approximate (MAXLEN ~): at least n are kept.
// Readers positioned before the retained window get state.ErrTrimmed.
func WithRetention(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.retention = n
		}
	}
}

// WithPrefix sets the Redis key prefix (Redis only). On Redis Cluster it
// must contain a hash tag such as "{tenant1}:" so all keys share a slot.
func WithPrefix(prefix string) Option {
	return func(o *options) {
		o.prefix = prefix
	}
}

// WithExactTrim makes the Redis log trim with XADD MAXLEN = instead of the
// cheaper approximate MAXLEN ~ (Redis only). Exact trimming costs more per
// append; tests use it to make the retained window predictable.
func WithExactTrim() Option {
	return func(o *options) { o.exactTrim = true }
}

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

func buildOptions(defaultRetention int, opts []Option) options {
	o := options{retention: defaultRetention, prefix: DefaultRedisPrefix, logger: slog.Default(), observer: nopObserver{}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.observer == nil {
		o.observer = nopObserver{}
	}
	return o
}
