package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/state"
)

// Stale reads (README.md, Limits and outages): while the store is
// unreachable, a read this replica answered before is answered again from
// its last successful response, marked stale by the X-Callfloor-Stale
// header (with Age, seconds since that response) and a "stale": true
// field on the object, or on every object of a list. Reads never answered
// before still get 503 store_unavailable; writes always do.

// StaleHeader marks a response served from the last known state.
const StaleHeader = "X-Callfloor-Stale"

// staleRoutes are the reads kept for an outage: the floor's live state.
// Reports come from SQL, not the store; the event stream resumes with
// Last-Event-ID instead.
var staleRoutes = map[string]bool{
	"/v1/me": true, "/v1/agents": true, "/v1/agents/:id": true, "/v1/statuses": true, "/v1/groups": true,
	"/v1/calls": true, "/v1/calls/:id": true, "/v1/queues": true, "/v1/queues/:id": true, "/v1/stats/today": true,
}

// Bounds of the kept responses: one response above staleMaxEntry is not
// kept; past staleMaxBytes in all, the oldest kept go first.
const (
	staleMaxEntry = 1 << 20
	staleMaxBytes = 32 << 20
)

// staleHeaders are the response headers a stale answer repeats.
var staleHeaders = []string{echo.HeaderContentType, "X-Next-Cursor", "Link"}

type staleEntry struct {
	body   []byte
	header http.Header
	at     time.Time
}

// staleCache keeps the last successful answer of each read, per actor
// (what a caller may see depends on who they are) and URL.
type staleCache struct {
	mu      sync.Mutex
	entries map[string]*staleEntry
	order   []string // keys, oldest put first (a key may repeat; see put)
	bytes   int
	now     func() time.Time
}

func newStaleCache(now func() time.Time) *staleCache {
	return &staleCache{entries: map[string]*staleEntry{}, now: now}
}

func (c *staleCache) put(key string, body []byte, header http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.bytes -= len(old.body)
	}
	c.entries[key] = &staleEntry{body: body, header: header, at: c.now()}
	c.bytes += len(body)
	c.order = append(c.order, key)
	for c.bytes > staleMaxBytes && len(c.order) > 0 {
		k := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.entries[k]; ok {
			c.bytes -= len(e.body)
			delete(c.entries, k)
		}
	}
	if len(c.order) > 4*len(c.entries)+64 { // drop repeats of keys put again
		seen := make(map[string]bool, len(c.entries))
		var order []string
		for i := len(c.order) - 1; i >= 0; i-- {
			if k := c.order[i]; !seen[k] && c.entries[k] != nil {
				seen[k] = true
				order = append(order, k)
			}
		}
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
		c.order = order
	}
}

func (c *staleCache) get(key string) (*staleEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return e, ok
}

// teeWriter passes a response through and keeps a copy of its body up to
// staleMaxEntry.
type teeWriter struct {
	http.ResponseWriter
	buf  bytes.Buffer
	over bool
}

func (w *teeWriter) Write(p []byte) (int, error) {
	if !w.over {
		if w.buf.Len()+len(p) > staleMaxEntry {
			w.over = true
			w.buf = bytes.Buffer{}
		} else {
			w.buf.Write(p)
		}
	}
	return w.ResponseWriter.Write(p)
}

// staleReads keeps the answers of staleRoutes and serves them, marked,
// when the store is unreachable. It runs after authentication (which
// works from its own cache during an outage).
func (s *Server) staleReads(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method != http.MethodGet || !staleRoutes[c.Path()] {
			return next(c)
		}
		key := ActorOf(c).ID + " " + c.Request().URL.RequestURI()
		res := c.Response()
		tee := &teeWriter{ResponseWriter: res.Writer}
		res.Writer = tee
		err := next(c)
		res.Writer = tee.ResponseWriter
		if err == nil {
			if res.Status == http.StatusOK && !tee.over {
				h := http.Header{}
				for _, k := range staleHeaders {
					if v := res.Header().Values(k); len(v) > 0 {
						h[k] = v
					}
				}
				s.stale.put(key, bytes.Clone(tee.buf.Bytes()), h)
			}
			return nil
		}
		if !storeUnavailable(err) || res.Committed {
			return err
		}
		e, ok := s.stale.get(key)
		if !ok {
			return err
		}
		body, merr := markStale(e.body)
		if merr != nil {
			return err
		}
		for k, v := range e.header {
			res.Header()[k] = v
		}
		res.Header().Set(StaleHeader, "1")
		res.Header().Set("Age", strconv.Itoa(int(s.stale.now().Sub(e.at).Seconds())))
		return c.Blob(http.StatusOK, e.header.Get(echo.HeaderContentType), body)
	}
}

// storeUnavailable: the error is (or will be rendered as) 503
// store_unavailable.
func storeUnavailable(err error) bool {
	var ae *Error
	return errors.Is(err, state.ErrUnavailable) || errors.As(err, &ae) && ae.Code == "store_unavailable"
}

var staleField = []byte(`"stale":true`)

// markStale adds "stale": true to a JSON object, or to every object of a
// JSON array, leaving the rest of the bytes as they were.
func markStale(body []byte) ([]byte, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil, errors.New("empty body")
	}
	switch b[0] {
	case '{':
		return markObject(b)
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, err
		}
		for i, it := range items {
			if m, err := markObject(bytes.TrimSpace(it)); err == nil {
				items[i] = m
			}
		}
		return json.Marshal(items)
	}
	return nil, errors.New("not a JSON object or array")
}

func markObject(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("not a JSON object")
	}
	out := make([]byte, 0, len(b)+len(staleField)+1)
	out = append(out, '{')
	out = append(out, staleField...)
	if rest := bytes.TrimSpace(b[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}
