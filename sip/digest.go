package sip

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// maxNonces bounds outstanding nonces (memory under a REGISTER flood).
const maxNonces = 100000

// authVerdict is what the authenticator decided about one request.
type authVerdict int

const (
	authOK        authVerdict = iota // credentials valid
	authChallenge                    // answer 401 with a fresh challenge
	authForbidden                    // answer 403: too many wrong answers, or wrong user
	authBad                          // answer 400: unparseable credentials
)

// nonceState is one issued nonce: bound to the client it was issued to,
// valid until expires; lastNC rejects replayed nonce counts.
type nonceState struct {
	client  string
	expires time.Time
	lastNC  int
}

type failKey struct{ client, user string }

type failState struct {
	n    int
	last time.Time
	held bool // a wrong answer from this key is being held (backoff)
}

// maxHeld bounds wrong answers held back at once (goroutines under a
// flood); beyond it they are refused without the wait.
const maxHeld = 1024

// authenticator is server-side digest (RFC 2617, MD5, qop=auth) with
// per-client nonces: each challenge mints a nonce bound to the source
// address it was sent to, so one leaked nonce does not authenticate a
// different client, and an expired nonce yields stale=true.
//
// Wrong answers are limited per (source host, user), never per user: the
// right password is always checked and always wins, so a guesser behind
// an agent's NAT cannot lock the agent out. From the maxFail-th wrong
// answer on, the reply is 403 and is held back for a backoff that doubles
// with each further wrong answer (backoffBase up to backoffMax); while one
// is held, other answers from the same source and user are refused unseen,
// which bounds guessing to one try per backoff.
type authenticator struct {
	realm       string
	ttl         time.Duration
	maxFail     int
	backoffBase time.Duration
	backoffMax  time.Duration
	now         func() time.Time

	mu     sync.Mutex
	nonces map[string]*nonceState
	fails  map[failKey]*failState
	held   int
}

func newAuthenticator(realm string, ttl time.Duration, maxFail int, now func() time.Time) *authenticator {
	return &authenticator{
		realm: realm, ttl: ttl, maxFail: maxFail, now: now,
		backoffBase: 250 * time.Millisecond, backoffMax: 2 * time.Second,
		nonces: make(map[string]*nonceState),
		fails:  make(map[failKey]*failState),
	}
}

// challenge mints a nonce for client and returns the header value.
func (a *authenticator) challenge(client string, stale bool) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	nonce := hex.EncodeToString(b[:])
	a.mu.Lock()
	if len(a.nonces) >= maxNonces {
		// A flood of unanswered challenges: forget an arbitrary one
		// rather than grow without bound (its client just re-challenges).
		for n := range a.nonces {
			delete(a.nonces, n)
			break
		}
	}
	a.nonces[nonce] = &nonceState{client: client, expires: a.now().Add(a.ttl)}
	a.mu.Unlock()
	c := digest.Challenge{Realm: a.realm, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	return c.String()
}

// passwordFunc looks a user's password up.
type passwordFunc func(ctx context.Context, user string) (string, bool, error)

// verify checks the digest credentials in authz (the Authorization header
// value, "" when absent) for a request with method from client.
// wantUser, when set, is the only username accepted (the AOR of a
// REGISTER). It returns the verdict, whether a challenge should say
// stale=true, and the authenticated user.
func (a *authenticator) verify(ctx context.Context, method, authz, client, wantUser string, password passwordFunc) (authVerdict, bool, string, error) {
	if authz == "" {
		return authChallenge, false, "", nil
	}
	if !digest.IsDigest(authz) {
		return authBad, false, "", nil
	}
	creds, err := digest.ParseCredentials(authz)
	if err != nil || creds.Username == "" || creds.Nonce == "" || creds.Response == "" {
		return authBad, false, "", nil
	}
	if wantUser != "" && creds.Username != wantUser {
		return authForbidden, false, creds.Username, nil
	}
	key := failKey{client: hostOf(client), user: creds.Username}
	if a.isHeld(key) {
		return authForbidden, false, creds.Username, nil
	}
	if creds.Realm != a.realm || (creds.Algorithm != "" && !strings.EqualFold(creds.Algorithm, "MD5")) {
		return authChallenge, false, creds.Username, nil
	}
	a.mu.Lock()
	ns, known := a.nonces[creds.Nonce]
	var nsCopy nonceState
	if known {
		nsCopy = *ns
	}
	a.mu.Unlock()
	if !known || nsCopy.client != hostOf(client) {
		// Not ours (or issued to someone else, or swept): a fresh
		// challenge, not a failure — the client did nothing wrong.
		return authChallenge, false, creds.Username, nil
	}
	pw, ok, err := password(ctx, creds.Username)
	if err != nil {
		return authChallenge, false, creds.Username, fmt.Errorf("sip: password for %q: %w", creds.Username, err)
	}
	if !ok || !a.matches(creds, method, pw) {
		v, wait := a.fail(key)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			a.release(key)
		}
		return v, false, creds.Username, nil
	}
	if a.now().After(nsCopy.expires) {
		// Right password, old nonce: RFC 2617 section 3.2.1 stale=true
		// lets the client retry without asking its user.
		return authChallenge, true, creds.Username, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ns, known = a.nonces[creds.Nonce]
	if !known {
		return authChallenge, true, creds.Username, nil
	}
	if creds.QOP != "" {
		if creds.Nc <= ns.lastNC {
			return authChallenge, true, creds.Username, nil // replayed nonce count
		}
		ns.lastNC = creds.Nc
	}
	delete(a.fails, key)
	return authOK, false, creds.Username, nil
}

// matches recomputes the response with the stored password.
func (a *authenticator) matches(creds *digest.Credentials, method, password string) bool {
	chal := &digest.Challenge{Realm: creds.Realm, Nonce: creds.Nonce, Algorithm: creds.Algorithm, Opaque: creds.Opaque}
	if creds.QOP != "" {
		if creds.QOP != "auth" {
			return false
		}
		chal.QOP = []string{"auth"}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: creds.URI, Username: creds.Username, Password: password,
		Cnonce: creds.Cnonce, Count: creds.Nc,
	})
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(want.Response)), []byte(strings.ToLower(creds.Response))) == 1
}

func (a *authenticator) isHeld(k failKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.fails[k]
	return f != nil && f.held
}

// fail counts one wrong answer: a new challenge while fewer than maxFail,
// then 403 held back for wait (release it after).
func (a *authenticator) fail(k failKey) (authVerdict, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.fails[k]
	if f == nil {
		f = &failState{}
		a.fails[k] = f
	}
	f.n++
	f.last = a.now()
	if f.n < a.maxFail {
		return authChallenge, 0
	}
	if a.backoffBase <= 0 || a.held >= maxHeld {
		return authForbidden, 0
	}
	wait := a.backoffBase << min(f.n-a.maxFail, 20)
	if wait > a.backoffMax || wait <= 0 {
		wait = a.backoffMax
	}
	f.held = true
	a.held++
	return authForbidden, wait
}

func (a *authenticator) release(k failKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.fails[k]; f != nil && f.held {
		f.held = false
		a.held--
	}
}

// sweep forgets nonces well past expiry (kept one TTL longer so a late
// client still learns stale=true) and failure counts older than
// failMemory.
func (a *authenticator) sweep(now time.Time) {
	const failMemory = 10 * time.Minute
	a.mu.Lock()
	defer a.mu.Unlock()
	for n, s := range a.nonces {
		if now.After(s.expires.Add(a.ttl)) {
			delete(a.nonces, n)
		}
	}
	for k, f := range a.fails {
		if !f.held && now.Sub(f.last) > failMemory {
			delete(a.fails, k)
		}
	}
}

// hostOf strips the port from a host:port source address.
func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && !strings.HasSuffix(addr, "]") {
		h := addr[:i]
		return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return addr
}

// failuresOf is the wrong-answer count of (host, user) (tests).
func (a *authenticator) failuresOf(host, user string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.fails[failKey{client: host, user: user}]; f != nil {
		return f.n
	}
	return 0
}
