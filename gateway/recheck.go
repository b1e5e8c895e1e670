package gateway

import "context"

// AdmissionRechecker is an optional interface of an Admitter, found by
// type assertion. A WebSocket is admitted when its handshake arrives, but
// becomes a live connection (one a kick can find and cut) only once the
// upstream answered 101 and the connection was taken over. A kick or ban
// landing in between would find nothing to close; so right after the
// takeover, before any byte is spliced, the gateway asks again.
type AdmissionRechecker interface {
	// RecheckAdmission returns nil if p is still admitted. Any error,
	// including failing to find out, closes the connection (fail closed).
	RecheckAdmission(ctx context.Context, p Participant) error
}

// admissionCheck is the check a live connection runs after its takeover,
// or nil when there is nothing to re-check (no room, or an Admitter
// without the interface).
func (g *Gateway) admissionCheck(ctx context.Context, p *Participant) func() error {
	rc, ok := g.opts.Admitter.(AdmissionRechecker)
	if !ok || p == nil {
		return nil
	}
	pp := *p
	return func() error { return rc.RecheckAdmission(context.WithoutCancel(ctx), pp) }
}
