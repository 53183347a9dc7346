package testpeer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisServer is a redis-server process a test started on a free loopback
// port. It is stopped (and waited for) when the test ends.
type RedisServer struct {
	path string
	dir  string
	port int
	cfg  redisConfig

	mu   sync.Mutex
	proc *redisProc
}

type redisProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
}

type redisConfig struct {
	appendOnly bool
	cluster    bool
	args       []string
	// sentinelConf, when set, runs the server as a Sentinel with this
	// configuration file (Sentinel insists on a writable one).
	sentinelConf string
}

// RedisOption configures StartRedis.
type RedisOption func(*redisConfig)

// WithAppendOnly turns on the append-only file with an fsync per write, so
// the data survives Restart (which kills the server the hard way).
func WithAppendOnly() RedisOption {
	return func(c *redisConfig) { c.appendOnly = true }
}

// WithCluster starts the server in cluster mode as a one-node cluster that
// owns all 16384 slots, so redis.ClusterClient and redis+cluster:// URLs
// work against it (hash tags, MOVED handling, multi-key scripts).
func WithCluster() RedisOption {
	return func(c *redisConfig) { c.cluster = true }
}

// WithRedisArgs passes extra configuration to redis-server, e.g.
// WithRedisArgs("--maxmemory", "10mb").
func WithRedisArgs(args ...string) RedisOption {
	return func(c *redisConfig) { c.args = append(c.args, args...) }
}

const redisStartTimeout = 15 * time.Second

// StartRedis starts redis-server bound to 127.0.0.1 on a free port, with
// its working directory in t.TempDir(), and waits until it answers PING.
// Without WithAppendOnly nothing is persisted. The test is skipped (failed
// under CALLFLOOR_REQUIRE_PEERS=1) when redis-server is not installed.
func StartRedis(t testing.TB, opts ...RedisOption) *RedisServer {
	t.Helper()
	path := Require(t, "redis-server", "redis-server")
	s := &RedisServer{path: path, dir: t.TempDir()}
	for _, o := range opts {
		o(&s.cfg)
	}
	t.Cleanup(s.stop)
	// The free port may be taken between FreePort and the bind; try again
	// on another port rather than fail the test.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		s.port = FreePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under masterName (quorum 1), for redis+sentinel:// URLs
// and redis.FailoverClient. Addr and URL are the Sentinel's own.
func StartSentinel(t testing.TB, master *RedisServer, masterName string) *RedisServer {
	t.Helper()
	path := Require(t, "redis-server", "redis-server")
	s := &RedisServer{path: path, dir: t.TempDir()}
	s.cfg.sentinelConf = filepath.Join(s.dir, "sentinel.conf")
	t.Cleanup(s.stop)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		s.port = FreePort(t)
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
			s.port, s.dir, masterName, master.port)
		if err = os.WriteFile(s.cfg.sentinelConf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start redis sentinel: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a redis:// URL for the server's database 0.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server with SIGKILL, as a crash or an outage would; Start
// brings it back on the same port and directory.
func (s *RedisServer) Stop() { s.stop() }

// Start starts a stopped server again on the same port and directory.
func (s *RedisServer) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("start redis-server again: %v", err)
	}
}

// Restart kills the server with SIGKILL, as a crash would, and starts it
// again on the same port and directory. With WithAppendOnly every
// acknowledged write is still there afterwards.
func (s *RedisServer) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	if err := s.start(); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
}

func (s *RedisServer) args() []string {
	if s.cfg.sentinelConf != "" {
		return []string{s.cfg.sentinelConf, "--sentinel", "--logfile", filepath.Join(s.dir, "redis.log")}
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--save", "",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.cfg.appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.cfg.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	return append(args, s.cfg.args...)
}

func (s *RedisServer) start() error {
	cmd := exec.Command(s.path, s.args()...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &redisProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := pingRedis(s.Addr())
		if err == nil && s.cfg.cluster {
			err = s.ownAllSlots()
		}
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			s.stop()
			return fmt.Errorf("redis-server exited on port %d: %s", s.port, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v (last: %v): %s",
				s.port, redisStartTimeout, err, s.logTail())
		}
	}
}

// stop kills the running process, if any, and waits until it is reaped.
func (s *RedisServer) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (s *RedisServer) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// ownAllSlots makes a cluster-mode server a one-node cluster and reports
// whether the cluster is up. On a restart the slots come from nodes.conf.
func (s *RedisServer) ownAllSlots() error {
	info, err := respCommand(s.Addr(), "CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if strings.Contains(info, "cluster_state:ok") {
		return nil
	}
	if strings.Contains(info, "cluster_slots_assigned:0") {
		if _, err := respCommand(s.Addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
			return err
		}
	}
	return errors.New("cluster not ready")
}

// respCommand sends one command and returns a simple, integer or bulk
// string reply; an error reply becomes an error.
func respCommand(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case line == "":
		return "", errors.New("empty reply")
	case line[0] == '-':
		return "", errors.New(line[1:])
	case line[0] == '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return line[1:], nil
	}
}

// pingRedis speaks just enough RESP to see the server answer +PONG (a
// server still loading its data answers -LOADING and is not ready).
func pingRedis(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// -NOAUTH: up, but protected by --requirepass.
	if line = strings.TrimSpace(line); line != "+PONG" && !strings.HasPrefix(line, "-NOAUTH") {
		return errors.New(line)
	}
	return nil
}
