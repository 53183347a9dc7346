// Package config loads callfloor's configuration: an optional YAML file
// (CALLFLOOR_CONFIG, or the bundled demo floor) overridden by environment
// variables. Unknown YAML keys are an error, so a typo is reported at
// start instead of silently ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/callfloor/callfloor"
	"github.com/callfloor/callfloor/presence"
)

// Config is the whole configuration.
type Config struct {
	HTTPAddr     string `yaml:"http_addr"`
	SIPAddr      string `yaml:"sip_addr"`
	MetricsAddr  string `yaml:"metrics_addr"`
	DebugAddr    string `yaml:"debug_addr"`
	RedisURL     string `yaml:"redis_url"`
	Timezone     string `yaml:"timezone"`
	HeartbeatTTL int    `yaml:"heartbeat_ttl_seconds"`
	// LeaseTTL is how long a replica's lease (floor, webhooks, media
	// server) lasts without renewal: the failover time when it dies.
	LeaseTTL int `yaml:"lease_ttl_seconds"`
	// HeldFacts bounds the media facts held in order while the store is
	// unreachable (README.md, Limits and outages); 0: routing's default.
	HeldFacts int `yaml:"held_facts"`
	// MaxLoopDelayMS is how late routing's loops may run before new calls
	// are refused (README.md, Limits and outages); 0: routing's default
	// (250 ms), -1: never refuse.
	MaxLoopDelayMS    int    `yaml:"max_loop_delay_ms"`
	DefaultIdleStatus string `yaml:"default_idle_status"`
	DefaultQueue      string `yaml:"default_queue"`
	// DefaultRegion ("VN") reads national phone numbers ("0901000011");
	// empty accepts international forms only.
	DefaultRegion string `yaml:"default_region"`
	// AvailableAfterOutdial seeds the account setting of that name on
	// first start (nil: the default, false); afterwards the stored
	// setting wins (PUT /v1/settings).
	AvailableAfterOutdial *bool `yaml:"available_after_outdial"`
	// DataDir holds files callfloor keeps itself (the SQLite reports
	// database); created if missing.
	DataDir string `yaml:"data_dir"`

	Reports Reports `yaml:"reports"`

	ARI ARI `yaml:"ari"`
	ESL ESL `yaml:"esl"`
	SIP SIP `yaml:"sip"`

	Statuses []Status `yaml:"statuses"`
	Groups   []Group  `yaml:"groups"`
	Agents   []Agent  `yaml:"agents"`
	Queues   []Queue  `yaml:"queues"`

	// Source says where the file came from, for the start-up log.
	Source string `yaml:"-"`
}

// Reports configures call history and reports (README.md, Reports): a
// PostgreSQL URL, or SQLite under DataDir when unset; and how many days
// each table keeps rows (0 = forever).
type Reports struct {
	URL           string `yaml:"url"`
	CallsDays     int    `yaml:"calls_days"`
	AttemptsDays  int    `yaml:"attempts_days"`
	IntervalsDays int    `yaml:"status_intervals_days"`
	MonitorsDays  int    `yaml:"monitors_days"`
}

// ARI selects Asterisk as the media server when URL is set.
type ARI struct {
	URL          string `yaml:"url"`
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	App          string `yaml:"app"`
	TrunkPattern string `yaml:"trunk_pattern"`
	// ContactsMaxAgeSeconds: how long a device's contacts, read at dial
	// time, are used before being read again (unset: 10 s; 0: every
	// dial; ari/contacts.go).
	ContactsMaxAgeSeconds *int `yaml:"contacts_max_age_seconds"`
}

// ESL selects FreeSWITCH as the media server when Addr is set.
type ESL struct {
	Addr           string `yaml:"addr"`
	Password       string `yaml:"password"`
	GatewayPattern string `yaml:"gateway_pattern"`
}

// SIP configures the built-in SIP path (used when neither ARI nor ESL is).
type SIP struct {
	TrunkSources  []string `yaml:"trunk_sources"`
	TrunkUser     string   `yaml:"trunk_user"`
	TrunkPassword string   `yaml:"trunk_password"`
	OutboundTrunk string   `yaml:"outbound_trunk"`
	Domain        string   `yaml:"domain"`
	// Media is "anchored" (the default: callfloor carries the audio, so
	// waiting callers hear music and supervisors can listen, whisper,
	// barge and take over) or "signalling" (SDP passes through between
	// trunk and phone; no mixer). README.md, "Media on the built-in SIP
	// path".
	Media string `yaml:"media"`
	// RTPPortMin and RTPPortMax bound the anchored RTP ports on the SIP
	// listener's address (default 20000-29999).
	RTPPortMin int `yaml:"rtp_port_min"`
	RTPPortMax int `yaml:"rtp_port_max"`
	// MaxCalls caps concurrent anchored calls; more get 503 (default 300).
	MaxCalls int `yaml:"max_calls"`
	// MusicFile is an 8 kHz mono WAV (16-bit PCM, µ-law or A-law) for
	// callers waiting in a queue; empty: the shipped music.
	MusicFile string `yaml:"music_file"`
	// RTPTimeoutSeconds: a leg that should send RTP and has not for this
	// long is hung up as a ghost (default 30).
	RTPTimeoutSeconds int `yaml:"rtp_timeout_seconds"`
	// SessionExpiresSeconds is the SIP session timer (RFC 4028) on every
	// answered dialog: a phone or trunk that stops answering refreshes is
	// hung up as a ghost (default and minimum 90).
	SessionExpiresSeconds int `yaml:"session_expires_seconds"`
}

// SIP media modes.
const (
	SIPMediaAnchored   = "anchored"
	SIPMediaSignalling = "signalling"
)

// Status is a custom call status.
type Status struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

// Group is a team with supervisors.
type Group struct {
	ID          string   `yaml:"id"`
	Name        string   `yaml:"name"`
	Supervisors []string `yaml:"supervisors"`
}

// Agent is a user to create at first start. Token (plain) or TokenSHA256
// (hex digest) gives them API access. AppDevice and DeskDevice rename the
// agent's two SIP devices (default "<id>" and "<id>-desk"); SIPPassword
// and DeskSIPPassword are their digest passwords (default
// "sip-<SIP user>").
type Agent struct {
	ID              string   `yaml:"id"`
	Name            string   `yaml:"name"`
	Email           string   `yaml:"email"`
	Phone           string   `yaml:"phone"`
	Role            string   `yaml:"role"`
	Groups          []string `yaml:"groups"`
	Distribution    string   `yaml:"distribution"`
	AppDevice       string   `yaml:"app_device"`
	DeskDevice      string   `yaml:"desk_device"`
	Token           string   `yaml:"token"`
	TokenSHA256     string   `yaml:"token_sha256"`
	SIPPassword     string   `yaml:"sip_password"`
	DeskSIPPassword string   `yaml:"desk_sip_password"`
}

// Queue is a queue to create at first start.
type Queue struct {
	ID                  string   `yaml:"id"`
	Name                string   `yaml:"name"`
	Hotlines            []string `yaml:"hotlines"`
	Members             []string `yaml:"members"`
	Strategy            string   `yaml:"strategy"`
	RingTimeoutSeconds  int      `yaml:"ring_timeout_seconds"`
	WrapupSeconds       int      `yaml:"wrapup_seconds"`
	ServiceLevelSeconds int      `yaml:"service_level_seconds"`
	// WaitMode is how callers wait: music (default) or ringback.
	WaitMode string `yaml:"wait_mode"`
}

// Environment variable names (README.md documents them).
const (
	EnvConfig      = "CALLFLOOR_CONFIG"
	EnvHTTPAddr    = "CALLFLOOR_HTTP_ADDR"
	EnvSIPAddr     = "CALLFLOOR_SIP_ADDR"
	EnvMetricsAddr = "CALLFLOOR_METRICS_ADDR"
	EnvDebugAddr   = "CALLFLOOR_DEBUG_ADDR"
	EnvRedisURL    = "CALLFLOOR_REDIS_URL"
	EnvTimezone    = "CALLFLOOR_TIMEZONE"
	EnvRegion      = "CALLFLOOR_DEFAULT_REGION"
	EnvARIURL      = "CALLFLOOR_ARI_URL"
	EnvARIUser     = "CALLFLOOR_ARI_USER"
	EnvARIPassword = "CALLFLOOR_ARI_PASSWORD"
	EnvARIApp      = "CALLFLOOR_ARI_APP"
	EnvESLAddr     = "CALLFLOOR_ESL_ADDR"
	EnvESLPassword = "CALLFLOOR_ESL_PASSWORD"
	EnvSIPMedia    = "CALLFLOOR_SIP_MEDIA"
	EnvRTPTimeout  = "CALLFLOOR_SIP_RTP_TIMEOUT_SECONDS"
	EnvLeaseTTL    = "CALLFLOOR_LEASE_TTL_SECONDS"
	EnvDataDir     = "CALLFLOOR_DATA_DIR"
	EnvReportsURL  = "CALLFLOOR_REPORTS_URL"
)

// Load reads the file named by CALLFLOOR_CONFIG (or the bundled demo floor
// when unset), applies environment overrides and defaults, and validates.
func Load(getenv func(string) string) (Config, error) {
	data, source := callfloor.DemoConfig, "bundled demo floor (config.example.yaml)"
	if path := getenv(EnvConfig); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read %s: %w", EnvConfig, err)
		}
		data, source = b, path
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", source, err)
	}
	cfg.Source = source
	cfg.applyEnv(getenv)
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", source, err)
	}
	return cfg, nil
}

// Parse decodes YAML strictly: unknown keys are errors naming the line.
func Parse(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file is the zero config (io.EOF), not an error.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func (c *Config) applyEnv(getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.HTTPAddr, EnvHTTPAddr)
	set(&c.SIPAddr, EnvSIPAddr)
	set(&c.MetricsAddr, EnvMetricsAddr)
	set(&c.DebugAddr, EnvDebugAddr)
	set(&c.RedisURL, EnvRedisURL)
	set(&c.Timezone, EnvTimezone)
	set(&c.DefaultRegion, EnvRegion)
	set(&c.ARI.URL, EnvARIURL)
	set(&c.ARI.User, EnvARIUser)
	set(&c.ARI.Password, EnvARIPassword)
	set(&c.ARI.App, EnvARIApp)
	set(&c.ESL.Addr, EnvESLAddr)
	set(&c.ESL.Password, EnvESLPassword)
	set(&c.DataDir, EnvDataDir)
	set(&c.Reports.URL, EnvReportsURL)
	set(&c.SIP.Media, EnvSIPMedia)
	if v := getenv(EnvLeaseTTL); v != "" {
		// Not a number: -1 fails validation with the variable named.
		n, err := strconv.Atoi(v)
		if err != nil {
			n = -1
		}
		c.LeaseTTL = n
	}
	if v := getenv(EnvRTPTimeout); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = -1
		}
		c.SIP.RTPTimeoutSeconds = n
	}
}

func (c *Config) applyDefaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	def(&c.HTTPAddr, "127.0.0.1:8080")
	def(&c.SIPAddr, "127.0.0.1:5060")
	def(&c.Timezone, "UTC")
	def(&c.DefaultIdleStatus, "unavailable")
	def(&c.ARI.App, "callfloor")
	def(&c.DataDir, "data")
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = 60
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 5
	}
	if len(c.SIP.TrunkSources) == 0 && c.SIP.TrunkUser == "" {
		c.SIP.TrunkSources = []string{"127.0.0.1"}
	}
	for i := range c.Queues {
		if c.Queues[i].RingTimeoutSeconds == 0 {
			c.Queues[i].RingTimeoutSeconds = 18
		}
	}
}

// Validate checks what can be checked without the store; record-level
// rules (E.164 phones, known groups) are enforced by the services when
// the floor is bootstrapped.
func (c *Config) Validate() error {
	var errs []error
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone %q: not an IANA zone name", c.Timezone))
	}
	if c.DefaultRegion != "" && !presence.ValidRegion(c.DefaultRegion) {
		errs = append(errs, fmt.Errorf("default_region %q: not a region code like VN or US", c.DefaultRegion))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http_addr %q: %w", c.HTTPAddr, err))
	}
	if _, _, err := net.SplitHostPort(c.SIPAddr); err != nil {
		errs = append(errs, fmt.Errorf("sip_addr %q: %w", c.SIPAddr, err))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metrics_addr %q: %w", c.MetricsAddr, err))
		}
	}
	if c.DebugAddr != "" && !IsLoopback(c.DebugAddr) {
		// Profiles expose memory contents and cost CPU: never off the host.
		errs = append(errs, fmt.Errorf("debug_addr %q: must be a loopback address (127.0.0.1:port or [::1]:port)", c.DebugAddr))
	}
	if c.LeaseTTL < 0 {
		errs = append(errs, errors.New("lease_ttl_seconds ("+EnvLeaseTTL+"): must be a positive number of seconds"))
	}
	if c.HeldFacts < 0 {
		errs = append(errs, errors.New("held_facts: must be a positive number (0 for the default)"))
	}
	if c.MaxLoopDelayMS < -1 {
		errs = append(errs, errors.New("max_loop_delay_ms: must be a positive number of milliseconds (0 for the default, -1 never to refuse calls)"))
	}
	if c.HeartbeatTTL < 0 {
		errs = append(errs, errors.New("heartbeat_ttl_seconds: must be positive"))
	}
	for name, days := range map[string]int{"calls_days": c.Reports.CallsDays, "attempts_days": c.Reports.AttemptsDays,
		"status_intervals_days": c.Reports.IntervalsDays, "monitors_days": c.Reports.MonitorsDays} {
		if days < 0 {
			errs = append(errs, fmt.Errorf("reports.%s: must be 0 (keep forever) or a positive number of days", name))
		}
	}
	if u := c.Reports.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		errs = append(errs, errors.New("reports.url ("+EnvReportsURL+"): must be a postgres:// or postgresql:// URL"))
	}
	if n := c.ARI.ContactsMaxAgeSeconds; n != nil && *n < 0 {
		errs = append(errs, fmt.Errorf("ari.contacts_max_age_seconds %d: 0 (read on every dial) or more", *n))
	}
	if c.ARI.URL != "" && c.ESL.Addr != "" {
		errs = append(errs, errors.New("both ari.url and esl.addr are set: choose one media server"))
	}
	switch c.SIP.Media {
	case "", SIPMediaAnchored, SIPMediaSignalling:
	default:
		errs = append(errs, fmt.Errorf("sip.media (%s) %q: anchored or signalling", EnvSIPMedia, c.SIP.Media))
	}
	if p, q := c.SIP.RTPPortMin, c.SIP.RTPPortMax; (p != 0 || q != 0) && (p < 1024 || q > 65535 || q <= p) {
		errs = append(errs, fmt.Errorf("sip.rtp_port_min %d / rtp_port_max %d: a range within 1024-65535 holding at least one port pair", p, q))
	}
	if n := c.SIP.SessionExpiresSeconds; n != 0 && n < 90 {
		errs = append(errs, fmt.Errorf("sip.session_expires_seconds %d: at least 90 (RFC 4028)", n))
	}
	if c.SIP.MaxCalls < 0 || c.SIP.RTPTimeoutSeconds < 0 {
		errs = append(errs, errors.New("sip.max_calls and sip.rtp_timeout_seconds ("+EnvRTPTimeout+"): must be positive"))
	}
	seen := map[string]bool{}
	for i, a := range c.Agents {
		if a.ID == "" {
			errs = append(errs, fmt.Errorf("agents[%d]: id is required", i))
		}
		if seen[a.ID] {
			errs = append(errs, fmt.Errorf("agents[%d]: duplicate id %q", i, a.ID))
		}
		seen[a.ID] = true
		if a.Token != "" && a.TokenSHA256 != "" {
			errs = append(errs, fmt.Errorf("agents[%d] (%s): give token or token_sha256, not both", i, a.ID))
		}
	}
	return errors.Join(errs...)
}

// Location is the account's time zone (Validate has checked it).
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// LeaseTTLDuration is the lease lifetime without renewal.
func (c *Config) LeaseTTLDuration() time.Duration { return time.Duration(c.LeaseTTL) * time.Second }

// MaxLoopDelay is max_loop_delay_ms as routing takes it: def when unset,
// 0 (never refuse) for -1.
func (c *Config) MaxLoopDelay(def time.Duration) time.Duration {
	switch {
	case c.MaxLoopDelayMS == 0:
		return def
	case c.MaxLoopDelayMS < 0:
		return 0
	}
	return time.Duration(c.MaxLoopDelayMS) * time.Millisecond
}

// HeartbeatTTLDuration is the heartbeat expiry.
func (c *Config) HeartbeatTTLDuration() time.Duration {
	return time.Duration(c.HeartbeatTTL) * time.Second
}

// PresenceOptions are the presence service's settings from the account:
// time zone, heartbeat, default idle status, phone region. The service
// callfloor runs and every test floor build it from these, so a rule
// that depends on one (national numbers, "go to idle") holds in both.
func (c *Config) PresenceOptions() []presence.Option {
	return []presence.Option{
		presence.WithLocation(c.Location()),
		presence.WithHeartbeatTTL(c.HeartbeatTTLDuration()),
		presence.WithDefaultIdleStatus(c.DefaultIdleStatus),
		presence.WithDefaultRegion(c.DefaultRegion),
	}
}

// Media names the configured media path: "asterisk", "freeswitch" or "sip".
func (c *Config) Media() string {
	switch {
	case c.ARI.URL != "":
		return "asterisk"
	case c.ESL.Addr != "":
		return "freeswitch"
	}
	return "sip"
}

// DemoTokens lists agents whose plain token starts with "demo-".
func (c *Config) DemoTokens() []string {
	var out []string
	for _, a := range c.Agents {
		if strings.HasPrefix(a.Token, "demo-") {
			out = append(out, a.Token)
		}
	}
	return out
}

// IsLoopback reports whether addr's host is a loopback address or name.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
