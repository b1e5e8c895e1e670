package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meetguard/meetguard/policy"
)

// PasscodeFailure counts a join refused for a wrong passcode.
func (s *Set) PasscodeFailure() {
	if s != nil {
		s.passcodeFail.Inc()
	}
}

// TokenRejected counts a refused bearer credential by its reason
// (auth.RejectReason).
func (s *Set) TokenRejected(reason string) {
	if s != nil {
		s.tokenRejections.WithLabelValues(oneOf(reason, tokenReasons)).Inc()
	}
}

// OIDC operations, for OIDCFailure.
const (
	OIDCDiscovery = "discovery"
	OIDCJWKS      = "jwks"
	OIDCRefresh   = "refresh"
)

// OIDCFailure counts a failed call to the identity provider.
func (s *Set) OIDCFailure(op string) {
	if s != nil {
		s.oidcFailures.WithLabelValues(oneOf(op, oidcOps)).Inc()
	}
}

// E2EEAlarm counts an alarm a client reported.
func (s *Set) E2EEAlarm(kind string) {
	if s != nil {
		s.e2eeAlarms.WithLabelValues(oneOf(kind, alarmKinds)).Inc()
	}
}

// PolicyRevision marks revision as the one serving.
func (s *Set) PolicyRevision(revision string) {
	if s == nil || revision == "" {
		return
	}
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if s.revision == revision {
		return
	}
	// One series at a time: the old revision's goes, so the label's
	// cardinality is one however often the policy changes.
	if s.revision != "" {
		s.policyRevision.DeleteLabelValues(s.revision)
	}
	s.revision = revision
	s.policyRevision.WithLabelValues(revision).Set(1)
}

// AuditQueue publishes the audit log's queue depth: records accepted and
// not yet durable. depth is called at every scrape.
func (s *Set) AuditQueue(depth func() int) error {
	if s == nil {
		return nil
	}
	return s.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "audit_queue_depth",
		Help: "Audit records accepted and waiting for their write and fsync."}, func() float64 { return float64(depth()) }))
}

// Decider is the admission policy as the rooms API asks it.
type Decider interface {
	Decide(ctx context.Context, in policy.Input) policy.Decision
	DecideCreate(ctx context.Context, in policy.Input) policy.Decision
}

// Policy times every decision of d and counts those that failed closed.
// Without a Set it returns d itself.
func (s *Set) Policy(d Decider) Decider {
	if s == nil {
		return d
	}
	return &timedPolicy{d: d, s: s}
}

type timedPolicy struct {
	d Decider
	s *Set
}

func (p *timedPolicy) Decide(ctx context.Context, in policy.Input) policy.Decision {
	start := time.Now()
	dec := p.d.Decide(ctx, in)
	p.s.observeDecision("admission", start, dec)
	return dec
}

func (p *timedPolicy) DecideCreate(ctx context.Context, in policy.Input) policy.Decision {
	start := time.Now()
	dec := p.d.DecideCreate(ctx, in)
	p.s.observeDecision("create", start, dec)
	return dec
}

func (s *Set) observeDecision(query string, start time.Time, d policy.Decision) {
	s.policyLatency.WithLabelValues(query).Observe(time.Since(start).Seconds())
	for _, r := range d.Reasons {
		if r == policy.ReasonPolicyError {
			s.policyErrors.WithLabelValues(query).Inc()
			break
		}
	}
	s.PolicyRevision(d.Revision)
}
