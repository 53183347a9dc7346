package testpeer

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// command sends one RESP command and returns the first reply line.
func command(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		if line, err = rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimSpace(line)
}

func TestStartRedisRestartKeepsAppendOnlyData(t *testing.T) {
	s := StartRedis(t, WithAppendOnly())
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	if got := command(t, s.Addr(), "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	s.Restart(t)
	if got := command(t, s.Addr(), "GET", "k"); got != "v" {
		t.Fatalf("GET after restart = %q, want v", got)
	}
}

func TestStartRedisWithoutPersistenceForgets(t *testing.T) {
	s := StartRedis(t)
	command(t, s.Addr(), "SET", "k", "v")
	s.Restart(t)
	if got := command(t, s.Addr(), "GET", "k"); got != "$-1" {
		t.Fatalf("GET after restart = %q, want nil", got)
	}
}

func TestStartRedisExtraArgs(t *testing.T) {
	s := StartRedis(t, WithRedisArgs("--databases", "3"))
	if got := command(t, s.Addr(), "SELECT", "2"); got != "+OK" {
		t.Fatalf("SELECT 2 = %q", got)
	}
	if got := command(t, s.Addr(), "SELECT", "3"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("SELECT 3 with --databases 3 = %q, want an error", got)
	}
}
