package ari

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// frame is a server frame (unmasked, as §5.1 requires).
func frame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, byte(n))
	case n <= 0xffff:
		out = append(out, 126, byte(n>>8), byte(n))
	default:
		out = append(out, 127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	return append(out, payload...)
}

// unmask decodes the client frames the reader wrote: each must be masked
// (§5.3).
func unmask(t *testing.T, b []byte) (ops []byte, payloads []string) {
	t.Helper()
	for len(b) > 0 {
		if b[1]&0x80 == 0 {
			t.Fatalf("client frame %x not masked", b)
		}
		n := int(b[1] & 0x7f)
		key, p := b[2:6], b[6:6+n]
		out := make([]byte, n)
		for i := range p {
			out[i] = p[i] ^ key[i%4]
		}
		ops, payloads = append(ops, b[0]&0x0f), append(payloads, string(out))
		b = b[6+n:]
	}
	return ops, payloads
}

func readerOf(in []byte, max int) (*wsReader, *bytes.Buffer) {
	var out bytes.Buffer
	return &wsReader{r: bufio.NewReader(bytes.NewReader(in)), w: &out, max: max}, &out
}

// Messages whole and in fragments, with pings between fragments answered
// by masked pongs, every length encoding, then the server's close.
func TestWSReaderMessages(t *testing.T) {
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70000)
	var in []byte
	in = append(in, frame(true, wsText, []byte(`{"type":"StasisStart"}`))...)
	in = append(in, frame(false, wsText, []byte(`{"type":`))...)
	in = append(in, frame(true, wsPing, []byte("are you there"))...)
	in = append(in, frame(false, wsContinuation, []byte(`"Dial"`))...)
	in = append(in, frame(true, wsPong, nil)...)
	in = append(in, frame(true, wsContinuation, []byte(`}`))...)
	in = append(in, frame(true, wsText, []byte(long))...)
	in = append(in, frame(true, wsBinary, []byte(huge))...)
	in = append(in, frame(true, wsText, nil)...)
	in = append(in, frame(true, wsClose, []byte{0x03, 0xe9, 'b', 'y', 'e'})...)
	r, out := readerOf(in, 1<<20)
	for _, want := range []string{`{"type":"StasisStart"}`, `{"type":"Dial"}`, long, huge, ""} {
		got, err := r.next()
		if err != nil || string(got) != want {
			t.Fatalf("message %.40q, %v; want %.40q", got, err, want)
		}
	}
	_, err := r.next()
	if !errors.Is(err, errWSClosed) || !strings.Contains(err.Error(), "1001") {
		t.Fatalf("after the close frame: %v, want errWSClosed with status 1001", err)
	}
	ops, payloads := unmask(t, out.Bytes())
	if !bytes.Equal(ops, []byte{wsPong, wsClose}) || payloads[0] != "are you there" || payloads[1] != "\x03\xe9" {
		t.Fatalf("wrote ops %x payloads %q; want a pong echoing the ping, then a close echoing 1001", ops, payloads)
	}
	if _, err := r.next(); err == nil {
		t.Fatal("a read after the end succeeded")
	}
}

// Frames a server may not send are errors, never messages.
func TestWSReaderRejects(t *testing.T) {
	masked := frame(true, wsText, []byte("hi"))
	masked[1] |= 0x80
	for name, in := range map[string][]byte{
		"masked":                  append(masked, 1, 2, 3, 4),
		"reserved bits":           {0x80 | 0x40 | wsText, 0},
		"reserved opcode":         frame(true, 0x3, nil),
		"reserved control opcode": frame(true, 0xb, nil),
		"continuation first":      frame(true, wsContinuation, []byte("x")),
		"text inside a message":   append(frame(false, wsText, []byte("a")), frame(true, wsText, []byte("b"))...),
		"fragmented ping":         frame(false, wsPing, nil),
		"long ping":               frame(true, wsPing, bytes.Repeat([]byte("p"), 126)),
		"over max":                frame(true, wsText, bytes.Repeat([]byte("m"), 101)),
		"over max in fragments":   append(frame(false, wsText, bytes.Repeat([]byte("m"), 60)), frame(true, wsContinuation, bytes.Repeat([]byte("m"), 60))...),
		"top length bit":          {0x80 | wsText, 127, 0x80, 0, 0, 0, 0, 0, 0, 1},
	} {
		r, _ := readerOf(in, 100)
		if _, err := r.next(); !errors.Is(err, errWSProtocol) {
			t.Errorf("%s: %v, want errWSProtocol", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"half header": {0x81},
		"short body":  frame(true, wsText, []byte("abc"))[:4],
		"short len":   {0x81, 126, 1},
	} {
		r, _ := readerOf(in, 100)
		if _, err := r.next(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v, want EOF", name, err)
		}
	}
}

// The reader never panics, never returns a message over its limit, and
// returns exactly the payloads of well-formed input.
func FuzzWSReader(f *testing.F) {
	f.Add(frame(true, wsText, []byte(`{"type":"Dial"}`)))
	f.Add(append(frame(false, wsText, []byte("a")), frame(true, wsContinuation, []byte("b"))...))
	f.Add(append(frame(true, wsPing, []byte("p")), frame(true, wsClose, []byte{3, 232})...))
	f.Add([]byte{0x81, 126, 0, 200})
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, _ := readerOf(in, 1024)
		for range 64 {
			msg, err := r.next()
			if err != nil {
				return
			}
			if len(msg) > 1024 {
				t.Fatalf("message of %d bytes over the 1024 limit", len(msg))
			}
		}
	})
}
