package ari

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
)

// EnvServeFake names the file TestServeFake writes its addresses to. Only
// set by tests of whole callfloor processes (cmd/callfloor's ARI failover
// test), which build this package's test binary and run
//
//	CALLFLOOR_FAKE_ARI_ADDR_FILE=<file> ari.test -test.run '^TestServeFake$'
//
// so that several real callfloor binaries drive one fake Asterisk.
const EnvServeFake = "CALLFLOOR_FAKE_ARI_ADDR_FILE"

// fakeChanView is a channel as the control API lists it.
type fakeChanView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	State      string `json:"state"`
	Endpoint   string `json:"endpoint"`
	Originated bool   `json:"originated"`
	InStasis   bool   `json:"in_stasis"`
	Bridge     string `json:"bridge"`
}

// TestServeFake runs the fake Asterisk as a peer process: ARI on one
// loopback port, a control API (the phones and the trunk, played by the
// calling test) on another. It writes "<ari url>\n<control url>\n" to the
// file named by EnvServeFake and serves until its standard input closes
// (the parent test ending, or dying, ends it). Skipped in a normal run.
func TestServeFake(t *testing.T) {
	path := os.Getenv(EnvServeFake)
	if path == "" {
		t.Skip("a peer process for cmd/callfloor's tests; runs only when " + EnvServeFake + " is set")
	}
	f := newFake(t)
	defer f.Close()
	ctl := httptest.NewServer(f.controlAPI())
	defer ctl.Close()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(f.URL()+"\n"+ctl.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // the reader never sees half a file
		t.Fatal(err)
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
	}
}

// controlAPI plays the trunk and the phones for a test in another process:
//
//	POST /inbound?caller=&hotline=   a trunk call enters Stasis → {"channel": id}
//	POST /ring?channel=              the device sends 180
//	POST /answer?channel=            the device answers
//	POST /hangup?channel=            the phone (or caller) hangs up
//	GET  /channels                   live channels, sorted by id
//	GET  /requests                   every ARI request logged so far
//	GET  /conns                      how many event sockets were accepted
//
// An unknown channel is 404 (the in-process helpers would fail the test
// from a goroutine that must not).
func (f *fakeARI) controlAPI() http.Handler {
	mux := http.NewServeMux()
	exists := func(w http.ResponseWriter, id string) bool {
		f.mu.Lock()
		_, ok := f.chans[id]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "no channel "+id, http.StatusNotFound)
		}
		return ok
	}
	onChannel := func(act func(id string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Query().Get("channel")
			if exists(w, id) {
				act(id)
				w.WriteHeader(http.StatusNoContent)
			}
		}
	}
	mux.HandleFunc("POST /inbound", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		reply(w, http.StatusOK, map[string]string{"channel": f.Inbound(q.Get("caller"), q.Get("hotline"))})
	})
	mux.HandleFunc("POST /ring", onChannel(f.Ring))
	mux.HandleFunc("POST /answer", onChannel(f.AnswerDevice))
	mux.HandleFunc("POST /hangup", onChannel(f.RemoteHangup))
	mux.HandleFunc("GET /channels", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		out := []fakeChanView{}
		for _, id := range f.sortedChans() {
			ch := f.chans[id]
			out = append(out, fakeChanView{ID: ch.id, Name: ch.name, State: ch.state, Endpoint: ch.endpoint,
				Originated: ch.originated, InStasis: ch.inStasis, Bridge: ch.bridge})
		}
		f.mu.Unlock()
		reply(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		out := slices.Clone(f.reqs)
		f.mu.Unlock()
		reply(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /conns", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(f.Conns())
	})
	return mux
}
