package metrics

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/gateway/audit"
)

// Recorder is the audit log as its writers use it.
type Recorder interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
}

// Audit returns a recorder that writes through to r and counts what was
// recorded: the audit log is where every admission, knock, kick, ban,
// rate-limit refusal, policy reload and key epoch is written exactly once,
// so counting there keeps the metrics and the log in agreement without a
// hook in each writer. Only records that became durable are counted; a
// failed write is counted as an audit failure. The result also has r's
// Ready method (nil when r has none). With a nil Set it only writes
// through.
func (s *Set) Audit(r Recorder) *Auditor {
	return &Auditor{r: r, s: s}
}

// Auditor is a Recorder that counts; see Set.Audit.
type Auditor struct {
	r Recorder
	s *Set
}

// Record writes through and counts.
func (a *Auditor) Record(ctx context.Context, event string, fields ...zap.Field) error {
	if a.s == nil {
		return a.r.Record(ctx, event, fields...)
	}
	start := time.Now()
	err := a.r.Record(ctx, event, fields...)
	switch {
	case err == nil:
		a.s.auditLatency.Observe(time.Since(start).Seconds())
		a.s.count(event, fields)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller gave up waiting; the record may still be written.
	default:
		a.s.auditFailures.Inc()
	}
	return err
}

// Ready reports the underlying log's readiness.
func (a *Auditor) Ready() error {
	if r, ok := a.r.(interface{ Ready() error }); ok {
		return r.Ready()
	}
	return nil
}

// Audit event names and members this file reads: gateway/audit's schema
// constants, under short names.
const (
	evAdmission       = audit.EventAdmissionDecision
	evRateLimited     = audit.EventAdmissionRateLimited
	evPasscodeAttack  = audit.EventRoomPasscodeAttack
	evKnock           = audit.EventLobbyKnock
	evRemove          = audit.EventRoomRemove
	evBan             = audit.EventRoomBan
	evLoginFailure    = audit.EventLoginFailure
	evEpoch           = audit.EventE2EEEpoch
	evE2EERejected    = audit.EventE2EERejected
	evPolicyReload    = audit.EventPolicyReload
	evPolicyRejected  = audit.EventPolicyReloadRejected
	evConfigReload    = audit.EventConfigReload
	evConfigRejected  = audit.EventConfigReloadRejected
	evGatewayStart    = audit.EventGatewayStart
	fieldDecision     = audit.FieldDecision
	fieldReasons      = audit.FieldReasons
	fieldUnit         = audit.FieldUnit
	fieldLimit        = audit.FieldLimit
	fieldRevision     = audit.FieldRevision
	fieldShadow       = audit.FieldShadow
	fieldPolicyRevRec = audit.FieldPolicyRevision
)

func (s *Set) count(event string, fields []zap.Field) {
	switch event {
	case evAdmission:
		m := members(fields, fieldDecision, fieldReasons, fieldUnit, fieldLimit)
		reason := "none"
		if rs, ok := m[fieldReasons].([]any); ok && len(rs) > 0 {
			if r, ok := rs[0].(string); ok {
				reason = s.reasons.value(r)
			}
		}
		s.admissions.WithLabelValues(oneOf(str(m, fieldDecision), decisions), reason).Inc()
		if l := str(m, fieldLimit); l != "" {
			s.rateLimited.WithLabelValues(oneOf(str(m, fieldUnit), units), oneOf(l, limits)).Inc()
		}
	case evRateLimited:
		m := members(fields, fieldUnit, fieldLimit)
		s.rateLimited.WithLabelValues(oneOf(str(m, fieldUnit), units), oneOf(str(m, fieldLimit), limits)).Inc()
	case evPasscodeAttack:
		s.passcodeAttacks.Inc()
	case evKnock:
		s.knocks.Inc()
	case evRemove:
		s.kicks.Inc()
	case evBan:
		s.bans.Inc()
	case evLoginFailure:
		s.loginFailures.Inc()
	case evEpoch:
		s.e2eeEpochs.Inc()
	case evE2EERejected:
		s.e2eeRejections.Inc()
	case evPolicyReload, evPolicyRejected:
		m := members(fields, fieldRevision, fieldShadow)
		if b, _ := m[fieldShadow].(bool); b {
			return // a shadow policy's reload changes nothing that serves
		}
		if event == evPolicyRejected {
			s.policyReloads.WithLabelValues("rejected").Inc()
			return
		}
		s.policyReloads.WithLabelValues("ok").Inc()
		s.PolicyRevision(str(members(fields, fieldRevision), fieldRevision))
	case evConfigReload:
		s.configReloads.WithLabelValues("ok").Inc()
	case evConfigRejected:
		s.configReloads.WithLabelValues("rejected").Inc()
	case evGatewayStart:
		s.PolicyRevision(str(members(fields, fieldPolicyRevRec), fieldPolicyRevRec))
	}
}

// members decodes the named members of a record (and only those).
func members(fields []zap.Field, keys ...string) map[string]any {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		for _, k := range keys {
			if f.Key == k {
				f.AddTo(enc)
				break
			}
		}
	}
	return enc.Fields
}

func str(m map[string]any, k string) string {
	v, _ := m[k].(string)
	return v
}
