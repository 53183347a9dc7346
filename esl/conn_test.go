package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoFS is a FreeSWITCH stand-in for the command path only: the recorded
// greeting and handshake replies, then every "api echo X" is answered
// "+OK X" (framed as FreeSWITCH frames api/response), "api slow X" the
// same after a pause, show commands with no rows.
func echoFS(t *testing.T) (addr string, wait func()) {
	t.Helper()
	var hs []string
	for _, l := range loadTranscript(t, "connect.jsonl") {
		if l.Dir == "in" && len(hs) < 3 {
			hs = append(hs, l.Raw) // auth/request, +OK accepted, +OK event listener
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		io.WriteString(c, hs[0])
		for i := 1; ; i++ {
			cmd, err := readCommand(br)
			if err != nil {
				return
			}
			switch {
			case i <= 2:
				io.WriteString(c, hs[i])
			case strings.HasPrefix(cmd, "api show "):
				io.WriteString(c, apiResponse(emptyRows))
			case strings.HasPrefix(cmd, "api slow "):
				time.Sleep(100 * time.Millisecond)
				io.WriteString(c, apiResponse("+OK "+strings.TrimPrefix(cmd, "api slow ")+"\n"))
			default:
				io.WriteString(c, apiResponse("+OK "+strings.TrimPrefix(cmd, "api echo ")+"\n"))
			}
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }
}

// TestConcurrentCommandsGetTheirOwnReplies: the eslgo trap where two
// goroutines' commands swap replies cannot happen here.
func TestConcurrentCommandsGetTheirOwnReplies(t *testing.T) {
	addr, wait := echoFS(t)
	r := start(t, testConfig(addr), newRecorder())
	r.waitReady(t)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprint(i)
			got, err := r.api(ctx(t), "api echo "+want, nil)
			if err != nil || got != "+OK "+want {
				t.Errorf("command %d got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()

	// A caller that gives up leaves its reply to be dropped, not to be
	// taken by the next command.
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := r.api(short, "api slow late", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow command: %v, want deadline exceeded", err)
	}
	if got, err := r.api(ctx(t), "api echo next", nil); err != nil || got != "+OK next" {
		t.Fatalf("command after an abandoned one got %q, %v", got, err)
	}
	r.stop(t)
	wait()
}
