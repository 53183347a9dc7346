package store

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// errBadURL marks a store URL Open cannot use.
var errBadURL = errors.New("store: bad redis URL")

// Deployment modes a URL can name.
const (
	modeSingle   = "single"
	modeSentinel = "sentinel"
	modeCluster  = "cluster"
)

// redisTarget is a parsed store URL. It never prints the password.
type redisTarget struct {
	mode   string
	scheme string
	single *redis.Options // modeSingle: what go-redis's ParseURL made of it

	addrs            []string // sentinel or cluster seed addresses
	master           string   // sentinel: the monitored master's name
	db               int
	username         string
	password         string
	sentinelUsername string
	sentinelPassword string
	tls              bool
}

// parseRedisURL accepts
//
//	redis://[[user]:password@]host[:port][/db][?go-redis options]   (also rediss://, unix://)
//	redis+sentinel://[[user]:password@]host:port[,host:port…]/master[/db][?sentinel_username=…&sentinel_password=…]
//	redis+cluster://[[user]:password@]host:port[,host:port…]
//
// and rediss+sentinel:// / rediss+cluster:// for TLS. The password in the
// user info is the data nodes' password; the sentinels' own credentials go
// in the query. Errors never contain the password.
func parseRedisURL(raw string) (redisTarget, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return redisTarget{}, fmt.Errorf("%w: no scheme (want redis://, rediss://, redis+sentinel:// or redis+cluster://)", errBadURL)
	}
	t := redisTarget{scheme: scheme}
	switch scheme {
	case "redis", "rediss", "unix":
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return redisTarget{}, fmt.Errorf("%w: %v", errBadURL, redactURLError(err))
		}
		t.mode, t.single = modeSingle, opts
		t.username, t.password, t.db = opts.Username, opts.Password, opts.DB
		return t, nil
	case "redis+sentinel", "rediss+sentinel":
		t.mode = modeSentinel
	case "redis+cluster", "rediss+cluster":
		t.mode = modeCluster
	default:
		return redisTarget{}, fmt.Errorf("%w: unknown scheme %q", errBadURL, scheme)
	}
	t.tls = strings.HasPrefix(scheme, "rediss")

	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if err := t.setUserInfo(authority[:at]); err != nil {
			return redisTarget{}, err
		}
		authority = authority[at+1:]
	}
	defaultPort := "6379"
	if t.mode == modeSentinel {
		defaultPort = "26379"
	}
	for _, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			return redisTarget{}, err
		}
		t.addrs = append(t.addrs, addr)
	}
	if err := t.setPath(path); err != nil {
		return redisTarget{}, err
	}
	if err := t.setQuery(rawQuery); err != nil {
		return redisTarget{}, err
	}
	return t, nil
}

func (t *redisTarget) setUserInfo(info string) error {
	user, pass, hasPass := strings.Cut(info, ":")
	var err error
	if t.username, err = url.PathUnescape(user); err != nil {
		return fmt.Errorf("%w: bad escape in user name", errBadURL)
	}
	if hasPass {
		if t.password, err = url.PathUnescape(pass); err != nil {
			return fmt.Errorf("%w: bad escape in password", errBadURL)
		}
	}
	return nil
}

// hostPort validates one host[:port], adding the default port.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("%w: empty host", errBadURL)
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// Only a missing port is fixable: "host" or "[::1]".
		host = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
			return "", fmt.Errorf("%w: bad host %q", errBadURL, h)
		}
		port = defaultPort
	}
	if host == "" || strings.ContainsAny(host, " /?#@,%[]") {
		return "", fmt.Errorf("%w: bad host %q", errBadURL, h)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
		return "", fmt.Errorf("%w: bad port in %q", errBadURL, h)
	}
	return net.JoinHostPort(host, port), nil
}

func (t *redisTarget) setPath(path string) error {
	parts := strings.Split(path, "/")
	if path == "" {
		parts = nil
	}
	switch t.mode {
	case modeCluster:
		if len(parts) > 0 && path != "" {
			return fmt.Errorf("%w: a cluster URL has no path (clusters only have database 0)", errBadURL)
		}
		return nil
	default: // sentinel: /master[/db]
		if len(parts) == 0 || parts[0] == "" {
			return fmt.Errorf("%w: sentinel URL needs the master name as path: redis+sentinel://host:26379/mymaster", errBadURL)
		}
		master, err := url.PathUnescape(parts[0])
		if err != nil || master == "" {
			return fmt.Errorf("%w: bad master name %q", errBadURL, parts[0])
		}
		t.master = master
		switch {
		case len(parts) == 1:
		case len(parts) == 2 && parts[1] != "":
			db, err := strconv.Atoi(parts[1])
			if err != nil || db < 0 || parts[1][0] == '+' {
				return fmt.Errorf("%w: bad database number %q", errBadURL, parts[1])
			}
			t.db = db
		default:
			return fmt.Errorf("%w: sentinel URL path is /master[/db]", errBadURL)
		}
		return nil
	}
}

func (t *redisTarget) setQuery(rawQuery string) error {
	if rawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("%w: bad query", errBadURL)
	}
	for key, vals := range q {
		if t.mode != modeSentinel || len(vals) != 1 {
			return fmt.Errorf("%w: unexpected option %q (a sentinel URL accepts sentinel_username and sentinel_password once; a cluster URL none)", errBadURL, key)
		}
		switch key {
		case "sentinel_username":
			t.sentinelUsername = vals[0]
		case "sentinel_password":
			t.sentinelPassword = vals[0]
		default:
			return fmt.Errorf("%w: unexpected option %q (a sentinel URL accepts sentinel_username and sentinel_password)", errBadURL, key)
		}
	}
	return nil
}

// String is the URL with passwords replaced, for logs.
func (t redisTarget) String() string {
	var b strings.Builder
	b.WriteString(t.scheme + "://")
	if t.username != "" || t.password != "" {
		b.WriteString(url.PathEscape(t.username))
		if t.password != "" {
			b.WriteString(":xxxxx")
		}
		b.WriteByte('@')
	}
	switch t.mode {
	case modeSingle:
		b.WriteString(t.single.Addr)
		if t.single.Network != "unix" {
			fmt.Fprintf(&b, "/%d", t.db)
		}
	case modeSentinel:
		fmt.Fprintf(&b, "%s/%s/%d", strings.Join(t.addrs, ","), url.PathEscape(t.master), t.db)
		var q []string
		if t.sentinelUsername != "" {
			q = append(q, "sentinel_username="+url.QueryEscape(t.sentinelUsername))
		}
		if t.sentinelPassword != "" {
			q = append(q, "sentinel_password=xxxxx")
		}
		sort.Strings(q)
		if len(q) > 0 {
			b.WriteString("?" + strings.Join(q, "&"))
		}
	case modeCluster:
		b.WriteString(strings.Join(t.addrs, ","))
	}
	return b.String()
}

// client builds the go-redis client the target names.
func (t redisTarget) client() redis.UniversalClient {
	var tlsConfig *tls.Config
	if t.tls {
		// ServerName stays empty: go-redis's dialer fills it per node.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch t.mode {
	case modeSentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       t.master,
			SentinelAddrs:    t.addrs,
			SentinelUsername: t.sentinelUsername,
			SentinelPassword: t.sentinelPassword,
			Username:         t.username,
			Password:         t.password,
			DB:               t.db,
			TLSConfig:        tlsConfig,
		})
	case modeCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:     t.addrs,
			Username:  t.username,
			Password:  t.password,
			TLSConfig: tlsConfig,
		})
	default:
		return redis.NewClient(t.single)
	}
}

// redactURLError strips the URL (and so any password) from a url.Error,
// which net/url builds with the whole input in its message.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
