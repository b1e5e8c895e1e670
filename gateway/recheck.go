package gateway

import (
	"context"

	"github.com/meetguard/meetguard/gateway/admission"
)

// admissionCheck is the check a live connection runs after its takeover,
// or nil when there is nothing to re-check (no room, or an Admitter
// without admission.Rechecker).
func (g *Gateway) admissionCheck(ctx context.Context, p *admission.Participant) func() error {
	rc, ok := g.opts.Admitter.(admission.Rechecker)
	if !ok || p == nil {
		return nil
	}
	pp := *p
	return func() error { return rc.RecheckAdmission(context.WithoutCancel(ctx), pp) }
}
