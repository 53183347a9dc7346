package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/state"
)

func openForTest(t *testing.T, url string) (state.StoreLog, string, error) {
	t.Helper()
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, url, slog.New(slog.NewTextHandler(&logs, nil)))
	if s != nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, logs.String(), err
}

// roundTrip proves a store works: a commit, its record and its event.
func roundTrip(t *testing.T, s state.StoreLog) {
	t.Helper()
	ctx := context.Background()
	evs, err := s.Commit(ctx, state.Tx{
		Puts:   []state.Put{{Kind: state.KindAgent, ID: "a1", Data: []byte(`{}`), IfVersion: state.AnyVersion}},
		Events: []state.NewEvent{{Type: "agent", Data: []byte(`{}`)}},
	})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if _, err := s.Get(ctx, state.KindAgent, "a1"); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if last, err := s.Last(ctx); err != nil || last != evs[0].ID {
		t.Fatalf("Last = %q, %v; want %q", last, err, evs[0].ID)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestOpenMemory(t *testing.T) {
	s, _, err := openForTest(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Memory); !ok {
		t.Fatalf("Open(\"\") = %T, want *Memory", s)
	}
	roundTrip(t, s)
}

func TestOpenRedisWithPassword(t *testing.T) {
	const password = "s3cret-Pa55"
	srv := testpeer.StartRedis(t, testpeer.WithRedisArgs("--requirepass", password))
	s, logs, err := openForTest(t, "redis://:"+password+"@"+srv.Addr()+"/1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s)
	if strings.Contains(logs, password) || !strings.Contains(logs, "xxxxx") {
		t.Fatalf("log = %q: want the URL with the password redacted", logs)
	}

	_, logs, err = openForTest(t, "redis://:wrong-"+password+"@"+srv.Addr()+"/1")
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), password) || strings.Contains(logs, password) {
		t.Fatalf("error %q / log %q leak the password", err, logs)
	}
	if _, _, err := openForTest(t, "redis://:"+password+"@h:badport"); err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("bad URL error = %v (must fail and not leak the password)", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	port := testpeer.FreePort(t) // nothing listens there
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := Open(ctx, "redis://127.0.0.1:"+itoa(port), nil)
	if err == nil || !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v, want state.ErrUnavailable", err)
	}
}

// OpenWaiting starts on an unreachable server: calls fail with
// state.ErrUnavailable until the server is back, then work.
func TestOpenWaitingForRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenWaiting(ctx, srv.URL(), nil)
	if err != nil {
		t.Fatalf("OpenWaiting with Redis down: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v, want state.ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, state.KindAgent, "a1"); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Get with Redis down: %v, want state.ErrUnavailable", err)
	}
	srv.Start(t)
	for s.Ping(ctx) != nil {
		if ctx.Err() != nil {
			t.Fatal("store never reconnected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	roundTrip(t, s)
}

func TestOpenSentinel(t *testing.T) {
	master := testpeer.StartRedis(t)
	sentinel := testpeer.StartSentinel(t, master, "mymaster")
	s, logs, err := openForTest(t, "redis+sentinel://"+sentinel.Addr()+"/mymaster/2")
	if err != nil {
		t.Fatalf("Open sentinel: %v (log %s)", err, logs)
	}
	roundTrip(t, s)
	// The data went to the master's database 2.
	direct := redis.NewClient(&redis.Options{Addr: master.Addr(), DB: 2})
	defer direct.Close()
	if n, err := direct.Exists(context.Background(), DefaultRedisPrefix+"rec:agent").Result(); err != nil || n != 1 {
		t.Fatalf("record hash on the master's db 2: exists=%d, %v", n, err)
	}
}

func TestOpenCluster(t *testing.T) {
	srv := testpeer.StartRedis(t, testpeer.WithCluster())
	s, logs, err := openForTest(t, "redis+cluster://"+srv.Addr())
	if err != nil {
		t.Fatalf("Open cluster: %v (log %s)", err, logs)
	}
	if _, ok := s.(*Redis).client.(*redis.ClusterClient); !ok {
		t.Fatalf("cluster URL gave a %T", s.(*Redis).client)
	}
	roundTrip(t, s)
}

func itoa(n int) string { return strconv.Itoa(n) }
