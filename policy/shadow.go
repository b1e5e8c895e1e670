package policy

import (
	"context"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.uber.org/zap"
)

// ShadowRecord compares the live decision with the shadow policy's decision
// for the same input.
type ShadowRecord struct {
	DecisionID     string   `json:"decision_id"`
	Path           string   `json:"path"`
	LiveRevision   string   `json:"live_revision"`
	ShadowRevision string   `json:"shadow_revision"`
	Live           Decision `json:"live"`
	Shadow         Decision `json:"shadow"`
	Agree          bool     `json:"agree"`
	Input          Input    `json:"input"`
}

// Same reports whether two decisions treat a person the same way: same
// outcome, role and reasons. Ids, revisions, messages and TTLs may differ.
func Same(a, b Decision) bool {
	return a.Allow == b.Allow && a.Lobby == b.Lobby && a.Role == b.Role && slices.Equal(a.Reasons, b.Reasons)
}

// runShadow evaluates the shadow policy off the request path. At most
// cap(shadowSlots) evaluations run at once; beyond that shadow comparisons
// are dropped (and counted in the log) rather than slowing admissions.
func (e *Engine) runShadow(ctx context.Context, srev *revision, kind queryKind, in Input, input ast.Value, live Decision) {
	select {
	case e.shadowSlots <- struct{}{}:
	default:
		e.log.Warn("policy.shadow_dropped", zap.String("decision_id", live.DecisionID))
		return
	}
	// The request may finish before the shadow does; the shadow keeps its
	// own deadline but not the request's cancellation.
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer func() { <-e.shadowSlots }()
		d, _, err := srev.eval(ctx, kind, input, e.opts.Timeout)
		if err != nil {
			d = policyError()
		}
		d.DecisionID, d.Revision = live.DecisionID, srev.hash
		rec := ShadowRecord{
			DecisionID:     live.DecisionID,
			Path:           e.queries[kind].path,
			LiveRevision:   live.Revision,
			ShadowRevision: srev.hash,
			Live:           live,
			Shadow:         d,
			Agree:          Same(live, d),
			Input:          in,
		}
		if !rec.Agree {
			e.log.Info("policy.shadow_disagreement",
				zap.String("decision_id", rec.DecisionID),
				zap.String("path", rec.Path),
				zap.String("sub", in.Identity.Sub),
				zap.String("room", in.Room.ID),
				zap.String("live_revision", rec.LiveRevision),
				zap.String("shadow_revision", rec.ShadowRevision),
				zap.Bool("live_allow", live.Allow), zap.Bool("live_lobby", live.Lobby),
				zap.String("live_role", live.Role), zap.Strings("live_reasons", live.Reasons),
				zap.Bool("shadow_allow", d.Allow), zap.Bool("shadow_lobby", d.Lobby),
				zap.String("shadow_role", d.Role), zap.Strings("shadow_reasons", d.Reasons),
				zap.NamedError("shadow_error", err))
		}
		if e.opts.OnShadow != nil {
			e.opts.OnShadow(rec)
		}
	}()
}
