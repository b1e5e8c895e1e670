// Package metrics holds the Prometheus metrics a security on-call watches:
// admissions and their reasons, the lobby, kicks and bans, rate limits and
// passcode guessing, the policy engine, the audit log, the identity
// provider, refused tokens, Redis and end-to-end encryption.
//
// Every name here is a stable interface (dashboards and alert rules under
// deploy/ use them; docs/operations.md lists them). Labels take values
// from small closed sets, never a person, a room or an address, so a
// storm of distinct rooms or subjects cannot blow up the series count.
//
// A Set is registered on the registry its caller passes (no global
// registry), and every method is safe on a nil *Set, so the parts that
// count things work unchanged in tests that do not watch metrics.
package metrics

import (
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name.
const Namespace = "meetguard"

// Other is the label value for anything outside a metric's known values.
const Other = "other"

// Options configures New.
type Options struct {
	// Registerer receives every metric. Required: metrics never go to a
	// process-wide default registry, so two gateways in one test process
	// (or one process) never collide.
	Registerer prometheus.Registerer
	// MaxReasons bounds the distinct reason label values a policy can
	// create (default 64); later new reasons count as "other". The shipped
	// policy uses about twenty.
	MaxReasons int
}

// Set is the security metrics of one gateway process.
type Set struct {
	admissions      *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	passcodeFail    prometheus.Counter
	passcodeAttacks prometheus.Counter
	knocks          prometheus.Counter
	lobbyWaiting    prometheus.Gauge
	lobbyWait       *prometheus.HistogramVec
	kicks           prometheus.Counter
	bans            prometheus.Counter
	policyLatency   *prometheus.HistogramVec
	policyErrors    *prometheus.CounterVec
	policyRevision  *prometheus.GaugeVec
	policyReloads   *prometheus.CounterVec
	auditLatency    prometheus.Histogram
	auditFailures   prometheus.Counter
	oidcFailures    *prometheus.CounterVec
	tokenRejections *prometheus.CounterVec
	loginFailures   prometheus.Counter
	redisLatency    prometheus.Histogram
	redisErrors     prometheus.Counter
	e2eeEpochs      prometheus.Counter
	e2eeRejections  prometheus.Counter
	e2eeAlarms      *prometheus.CounterVec
	configReloads   *prometheus.CounterVec

	reasons *labelSet

	revMu    sync.Mutex
	revision string

	reg prometheus.Registerer
}

// Label values of the closed sets.
var (
	decisions     = []string{"allow", "lobby", "deny"}
	units         = []string{"identity", "address", "room"}
	limits        = []string{"join_attempts", "passcode_failures", "join_failures", "address_failures", "passcode_attack"}
	lobbyOutcomes = []string{"admitted", "denied"}
	queries       = []string{"admission", "create"}
	results       = []string{"ok", "rejected"}
	oidcOps       = []string{"discovery", "jwks", "refresh"}
	// The bearer token rejection reasons of auth.RejectReason.
	tokenReasons = []string{"expired", "unknown_key", "bad_signature", "wrong_audience", "wrong_issuer", "not_yet_valid", "malformed", "invalid"}
	// The alarm kinds a client may report (docs/e2ee.md, section 6).
	alarmKinds = []string{"identity_mismatch", "context_mismatch", "credential_mismatch", "credential_expired", "clone", "roster", "authenticator", "other"}
)

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// New registers the metrics on o.Registerer.
func New(o Options) (*Set, error) {
	if o.Registerer == nil {
		return nil, errors.New("metrics: Options.Registerer is required")
	}
	if o.MaxReasons <= 0 {
		o.MaxReasons = 64
	}
	s := &Set{reasons: newLabelSet(o.MaxReasons), reg: o.Registerer}
	s.admissions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "admissions_total",
		Help: "Room admission decisions recorded, by decision (allow, lobby, deny) and first reason code."}, []string{"decision", "reason"})
	s.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rate_limited_total",
		Help: "Joins refused by a rate limit or passcode backoff, by what the limit is about (unit) and which limit."}, []string{"unit", "limit"})
	s.passcodeFail = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "passcode_failures_total",
		Help: "Joins refused because the passcode given was wrong."})
	s.passcodeAttacks = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "passcode_attacks_total",
		Help: "Rooms whose budget of wrong passcodes was spent (room.passcode_attack records)."})
	s.knocks = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "lobby_knocks_total",
		Help: "Callers sent to a waiting room (lobby.knock records)."})
	s.lobbyWaiting = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "lobby_waiting",
		Help: "People waiting in all waiting rooms, as this node follows the cluster's room events."})
	s.lobbyWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "lobby_wait_seconds",
		Help:    "Time from a knock until a host admitted or denied it.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800}}, []string{"outcome"})
	s.kicks = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "kicks_total",
		Help: "Participants a host removed from a room (room.remove records)."})
	s.bans = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "bans_total",
		Help: "Subjects a host banned from a room (room.ban records)."})
	s.policyLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "policy_decision_duration_seconds",
		Help: "Time the policy engine took for one decision, by query.", Buckets: latencyBuckets}, []string{"query"})
	s.policyErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "policy_errors_total",
		Help: "Decisions the engine could not make and denied (fail closed: timeout, undefined or malformed result), by query."}, []string{"query"})
	s.policyRevision = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "policy_revision_info",
		Help: "1 for the policy revision serving now."}, []string{"revision"})
	s.policyReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "policy_reloads_total",
		Help: "Policy reloads, by result (ok: a new revision serves; rejected: the old one keeps serving)."}, []string{"result"})
	s.auditLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "audit_write_duration_seconds",
		Help: "Time for one audit record to become durable (written and fsynced), as its writer waited.", Buckets: latencyBuckets})
	s.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "audit_write_failures_total",
		Help: "Audit records that could not be written; the action they recorded was refused."})
	s.oidcFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "oidc_failures_total",
		Help: "Failed calls to the OpenID provider, by operation (discovery, jwks, refresh)."}, []string{"op"})
	s.tokenRejections = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "token_rejections_total",
		Help: "Bearer credentials refused, by reason (expired, unknown_key, bad_signature, wrong_audience, wrong_issuer, not_yet_valid, malformed, invalid)."}, []string{"reason"})
	s.loginFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "login_failures_total",
		Help: "Browser logins that failed (login.failure records)."})
	s.redisLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "redis_command_duration_seconds",
		Help: "Time for one Redis command or pipeline.", Buckets: latencyBuckets})
	s.redisErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "redis_errors_total",
		Help: "Redis commands or pipelines that failed (network, timeout, server error; a missing key is not an error)."})
	s.e2eeEpochs = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "e2ee_epochs_total",
		Help: "End-to-end key epochs started (e2ee.epoch records)."})
	s.e2eeRejections = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "e2ee_rejections_total",
		Help: "End-to-end key messages the gateway refused (e2ee.rejected records)."})
	s.e2eeAlarms = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "e2ee_alarms_total",
		Help: "End-to-end encryption alarms reported by clients, by kind."}, []string{"kind"})
	s.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "config_reloads_total",
		Help: "Configuration reloads (SIGHUP), by result (ok, rejected)."}, []string{"result"})

	for _, c := range []prometheus.Collector{s.admissions, s.rateLimited, s.passcodeFail, s.passcodeAttacks, s.knocks,
		s.lobbyWaiting, s.lobbyWait, s.kicks, s.bans, s.policyLatency, s.policyErrors, s.policyRevision, s.policyReloads,
		s.auditLatency, s.auditFailures, s.oidcFailures, s.tokenRejections, s.loginFailures, s.redisLatency, s.redisErrors,
		s.e2eeEpochs, s.e2eeRejections, s.e2eeAlarms, s.configReloads} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	// Vectors appear in /metrics only once a child exists: create every
	// known one at zero, so that dashboards and alerts find each series
	// (and rate() starts from 0) before the first event.
	for _, d := range decisions {
		s.admissions.WithLabelValues(d, "none")
	}
	for _, u := range units {
		for _, l := range limits {
			s.rateLimited.WithLabelValues(u, l)
		}
	}
	for _, o := range lobbyOutcomes {
		s.lobbyWait.WithLabelValues(o)
	}
	for _, q := range queries {
		s.policyLatency.WithLabelValues(q)
		s.policyErrors.WithLabelValues(q)
	}
	for _, r := range results {
		s.policyReloads.WithLabelValues(r)
		s.configReloads.WithLabelValues(r)
	}
	for _, op := range oidcOps {
		s.oidcFailures.WithLabelValues(op)
	}
	for _, r := range tokenReasons {
		s.tokenRejections.WithLabelValues(r)
	}
	for _, k := range alarmKinds {
		s.e2eeAlarms.WithLabelValues(k)
	}
	return s, nil
}

// Registerer is the registry the set was registered on, for parts that
// add collectors of their own (the audit queue depth).
func (s *Set) Registerer() prometheus.Registerer {
	if s == nil {
		return nil
	}
	return s.reg
}

// oneOf returns v if it is in known, else Other.
func oneOf(v string, known []string) string {
	for _, k := range known {
		if v == k {
			return v
		}
	}
	return Other
}

// reasonCode matches what a policy reason code looks like; anything else
// (a policy returning free text) is counted as Other.
var reasonCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// labelSet admits at most max distinct label values, first come first
// served: the label's cardinality stays bounded whatever a policy says.
type labelSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func newLabelSet(max int) *labelSet { return &labelSet{max: max, seen: map[string]struct{}{}} }

func (l *labelSet) value(v string) string {
	if !reasonCode.MatchString(v) {
		return Other
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.max {
		return Other
	}
	l.seen[v] = struct{}{}
	return v
}
