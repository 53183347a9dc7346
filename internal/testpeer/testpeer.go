// Package testpeer finds and starts the real programs tests talk to
// (redis-server, sipp, chromium) on free loopback ports.
//
// A test that needs a peer calls Require. On a developer laptop without the
// program the test is skipped with a message saying how to install it; when
// CALLFLOOR_REQUIRE_PEERS=1 (set by .ci/run and `make test`) a missing peer
// fails the test, so CI can never pass by silently skipping.
package testpeer

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// RequireEnv is the variable that turns a missing peer into a failure.
const RequireEnv = "CALLFLOOR_REQUIRE_PEERS"

// Require returns the path of program, or skips (fails under RequireEnv)
// the test when it is not installed. pkg is the Debian package to suggest.
func Require(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s not found and %s=1: install it (apt-get install %s) or run `make test`", program, RequireEnv, pkg)
	}
	t.Skipf("%s not installed (apt-get install %s); set %s=1 to make this a failure", program, pkg, RequireEnv)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free udp port: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// FreeDualPort returns a port on 127.0.0.1 free for both UDP and TCP a
// moment ago (SIP listens on both).
func FreeDualPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			continue
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		c.Close()
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}
