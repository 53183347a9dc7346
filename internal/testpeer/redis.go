package testpeer

import (
	"bufio"
	"errors"
	"fmt"
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
	args       []string
}

// RedisOption configures StartRedis.
type RedisOption func(*redisConfig)

// WithAppendOnly turns on the append-only file with an fsync per write, so
// the data survives Restart (which kills the server the hard way).
func WithAppendOnly() RedisOption {
	return func(c *redisConfig) { c.appendOnly = true }
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

// Addr is the server's host:port.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a redis:// URL for the server's database 0.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() + "/0" }

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
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}
