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

func TestStartRedisCluster(t *testing.T) {
	s := StartRedis(t, WithCluster(), WithAppendOnly())
	info, err := respCommand(s.Addr(), "CLUSTER", "INFO")
	if err != nil || !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("CLUSTER INFO = %q, %v", info, err)
	}
	if _, err := respCommand(s.Addr(), "SET", "{a}k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if got, err := respCommand(s.Addr(), "GET", "{a}k"); err != nil || got != "v" {
		t.Fatalf("GET after restart = %q, %v", got, err)
	}
}

func TestStartSentinel(t *testing.T) {
	master := StartRedis(t)
	sentinel := StartSentinel(t, master, "mymaster")
	conn, err := net.DialTimeout("tcp", sentinel.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "SENTINEL get-master-addr-by-name mymaster\r\n")
	rd := bufio.NewReader(conn)
	var lines []string
	for i := 0; i < 5; i++ { // *2, $9, 127.0.0.1, $n, port
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	if lines[2] != "127.0.0.1" || "127.0.0.1:"+lines[4] != master.Addr() {
		t.Fatalf("sentinel reports master %v, want %s", lines, master.Addr())
	}
}

func TestStartRedisWithPassword(t *testing.T) {
	s := StartRedis(t, WithRedisArgs("--requirepass", "pw"))
	if _, err := respCommand(s.Addr(), "GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("GET without AUTH: %v, want NOAUTH", err)
	}
}
