package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresServer is a PostgreSQL server a test started with initdb in a
// temporary directory, on a free loopback port. It is stopped (and waited
// for) when the test ends.
type PostgresServer struct {
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// nobody is the unprivileged user PostgreSQL runs as when the tests run as
// root (CI does): initdb and postgres refuse to run as root.
const nobodyID = 65534

// postgresBin finds a PostgreSQL program: on PATH, else in Debian's
// versioned directory (/usr/lib/postgresql/<v>/bin, newest first).
func postgresBin(t testing.TB, program string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + program)
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	if len(dirs) > 0 {
		return dirs[0]
	}
	return Require(t, program, "postgresql")
}

// StartPostgres runs initdb into t.TempDir() and starts postgres on
// 127.0.0.1 with trust authentication for the user "postgres" (loopback
// only, test data only). As root, both run as the user nobody.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	initdb := postgresBin(t, "initdb")
	postgres := postgresBin(t, "postgres")
	root := t.TempDir()
	dir := filepath.Join(root, "pgdata")
	asRoot := os.Geteuid() == 0
	if asRoot {
		// nobody must reach the data directory: open the temp path for
		// traversal only, and hand it the directory itself.
		for p := root; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o711); err != nil {
				t.Fatalf("postgres temp dir: %v", err)
			}
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobodyID, nobodyID); err != nil {
			t.Fatalf("postgres temp dir: %v", err)
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if asRoot {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobodyID, Gid: nobodyID}
		}
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		return cmd
	}
	out, err := run(initdb, "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s := &PostgresServer{dir: dir}
	t.Cleanup(s.stop)
	for attempt := 0; attempt < 3; attempt++ {
		s.port = FreePort(t)
		logf := filepath.Join(dir, "server.log")
		cmd := run(postgres, "-D", dir, "-p", strconv.Itoa(s.port), "-h", "127.0.0.1", "-k", "", "-F",
			"-c", "logging_collector=off", "-c", "max_connections=50")
		f, err := os.OpenFile(logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			f.Close()
			t.Fatalf("start postgres: %v", err)
		}
		s.cmd, s.done = cmd, make(chan struct{})
		go func() { _ = cmd.Wait(); f.Close(); close(s.done) }()
		if err := s.waitReady(15 * time.Second); err == nil {
			return s
		}
		s.stop()
		b, _ := os.ReadFile(logf)
		t.Logf("postgres did not start on port %d; log:\n%s", s.port, tail(string(b), 2000))
	}
	t.Fatal("postgres did not start")
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitReady polls the port until the server accepts connections and
// answers the startup handshake (a plain TCP accept comes earlier).
func (s *PostgresServer) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited")
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			c.Close()
			if ready, _ := filepath.Glob(filepath.Join(s.dir, "postmaster.pid")); len(ready) > 0 {
				if b, err := os.ReadFile(ready[0]); err == nil && strings.Contains(string(b), "ready") {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("postgres not ready after %s", limit)
}

// Addr is the server's host:port.
func (s *PostgresServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a postgres:// URL for database db as the superuser postgres.
func (s *PostgresServer) URL(db string) string {
	return "postgres://postgres@" + s.Addr() + "/" + db + "?sslmode=disable"
}

// stop asks for a fast shutdown (SIGINT), then kills after a grace period.
func (s *PostgresServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}
