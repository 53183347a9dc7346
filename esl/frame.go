package esl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/percipia/eslgo"
)

// Content types of ESL frames (the constants come from eslgo, which got
// these right; its reader and dispatcher are what we replace).
const (
	typeAuthRequest = eslgo.TypeAuthRequest // "auth/request"
	typeReply       = eslgo.TypeReply       // "command/reply"
	typeAPIResponse = eslgo.TypeAPIResponse // "api/response"
	typeEventPlain  = eslgo.TypeEventPlain  // "text/event-plain"
	typeDisconnect  = eslgo.TypeDisconnect  // "text/disconnect-notice"
)

// Limits that keep a corrupt or hostile stream from exhausting memory.
const (
	maxHeaderLine = 64 << 10 // one header line
	maxHeaders    = 4096     // header lines in one block
	maxBody       = 16 << 20 // Content-Length of one frame
)

// errBadFrame marks a stream we can no longer frame: the connection must
// be dropped and re-established, never trusted again.
var errBadFrame = errors.New("esl: malformed frame")

// errHeaderEOF: the input ended at a line boundary inside a header block.
var errHeaderEOF = fmt.Errorf("%w: stream ended inside a header block", errBadFrame)

// frame is one ESL message: the outer header block and its body. Replies
// to commands (command/reply) carry no Content-Length and no body.
type frame struct {
	contentType string
	replyText   string // command/reply: Reply-Text
	jobUUID     string // command/reply to bgapi: Job-UUID
	body        []byte
}

// readFrame reads one frame. Any error leaves the stream unusable.
func readFrame(r *bufio.Reader) (*frame, error) {
	f := &frame{}
	length := -1
	n := 0
	err := readHeaderBlock(r, func(k, v string) error {
		switch k {
		case "Content-Type":
			f.contentType = v
		case "Content-Length":
			l, err := strconv.Atoi(v)
			if err != nil || l < 0 || l > maxBody {
				return fmt.Errorf("%w: Content-Length %q", errBadFrame, v)
			}
			length = l
		case "Reply-Text":
			f.replyText = unescape(v)
		case "Job-UUID":
			f.jobUUID = v
		}
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if length > 0 {
		body, err := readBody(r, length)
		if err != nil {
			return nil, fmt.Errorf("%w: truncated body (%d bytes announced): %v", errBadFrame, length, err)
		}
		f.body = body
	}
	return f, nil
}

// readBody reads exactly n bytes. Memory grows with what arrives, not
// with what a (possibly corrupt) Content-Length announces.
func readBody(r io.Reader, n int) ([]byte, error) {
	if n <= 64<<10 {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readHeaderBlock reads "Name: value" lines up to the blank line that ends
// the block, calling fn for each. Blank lines before the first header are
// skipped (FreeSWITCH never sends them, but they are harmless).
func readHeaderBlock(r *bufio.Reader, fn func(k, v string) error) error {
	seen := 0
	for {
		line, err := readLine(r)
		if err != nil {
			if seen > 0 && errors.Is(err, io.EOF) {
				return errHeaderEOF
			}
			return err
		}
		if len(line) == 0 {
			if seen == 0 {
				continue
			}
			return nil
		}
		if seen++; seen > maxHeaders {
			return fmt.Errorf("%w: more than %d header lines", errBadFrame, maxHeaders)
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			return fmt.Errorf("%w: header line without colon %q", errBadFrame, truncate(line))
		}
		if err := fn(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return err
		}
	}
}

// readLine returns one line without its "\n" or "\r\n".
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		buf := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(buf) > maxHeaderLine {
				return nil, fmt.Errorf("%w: header line longer than %d bytes", errBadFrame, maxHeaderLine)
			}
			line, err = r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err != nil {
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: stream ended mid-line", errBadFrame)
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// event is a parsed text/event-plain body. Values are kept URL-encoded as
// FreeSWITCH sent them and decoded on lookup: an event carries ~200
// variable_* headers of which we read a handful.
type event struct {
	headers map[string]string
	body    []byte // BACKGROUND_JOB result, or another inner body
}

// parseEvent parses an event-plain body: URL-encoded header lines, a blank
// line, and (BACKGROUND_JOB) an inner Content-Length body. The body is
// converted to a string once and headers are slices of it.
func parseEvent(b []byte) (*event, error) {
	s := string(b)
	ev := &event{headers: make(map[string]string, 64)}
	length := -1
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			if s != "" {
				return nil, fmt.Errorf("%w: event ends mid-line", errBadFrame)
			}
			break // ended after its last header, without the blank line
		}
		line := strings.TrimSuffix(s[:i], "\r")
		s = s[i+1:]
		if line == "" {
			if len(ev.headers) == 0 && length < 0 {
				continue
			}
			break
		}
		if len(ev.headers) >= maxHeaders {
			return nil, fmt.Errorf("%w: more than %d event headers", errBadFrame, maxHeaders)
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: event header without colon %q", errBadFrame, truncate([]byte(line)))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "Content-Length" {
			l, err := strconv.Atoi(v)
			if err != nil || l < 0 || l > len(b) {
				return nil, fmt.Errorf("%w: event Content-Length %q", errBadFrame, v)
			}
			length = l
			continue
		}
		ev.headers[k] = v
	}
	if len(ev.headers) == 0 {
		return nil, fmt.Errorf("%w: empty event", errBadFrame)
	}
	if length > 0 {
		if len(s) < length {
			return nil, fmt.Errorf("%w: truncated event body", errBadFrame)
		}
		ev.body = []byte(s[:length])
	}
	return ev, nil
}

// get returns a header, URL-decoded ("" when absent).
func (e *event) get(k string) string { return unescape(e.headers[k]) }

// name is the event's name, with the subclass for CUSTOM events
// ("CUSTOM sofia::register").
func (e *event) name() string {
	n := e.headers["Event-Name"]
	if n == "CUSTOM" {
		return n + " " + e.get("Event-Subclass")
	}
	return n
}

// unescape decodes FreeSWITCH's URL encoding (%XX; "+" is literal, as
// FreeSWITCH encodes a plus as %2B). Undecodable values are returned raw.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	d, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return d
}
