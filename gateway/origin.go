package gateway

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/web"
)

// originCheck is how the edge calls the one origin rule, web.Origins, for
// an authenticated identity; api also accepts web.CSRFHeader (the
// gateway's own API).
func originCheck(o web.Origins, r *http.Request, id identity.Identity, api bool) error {
	return o.Check(r, web.Caller{Upgrade: isUpgrade(r), Session: id.Via == identity.ViaSession,
		Bearer: id.Via == identity.ViaBearer, HeaderProof: api})
}

// refuseForeignOrigin answers 403 {"error":"csrf"} (as the rooms API does)
// and records the attempt: someone's browser was made to reach the gateway
// from another site.
func (g *Gateway) refuseForeignOrigin(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	g.noteForeignOrigin(r, id)
	g.refuse(w, r, http.StatusForbidden, "csrf", "Cross-site request refused.")
}

// noteForeignOrigin writes the log line and counts the audit record of a
// refused cross-origin request.
func (g *Gateway) noteForeignOrigin(r *http.Request, id identity.Identity) {
	g.opts.Logger.Info("request from a foreign origin refused", zap.String("origin", r.Header.Get("Origin")),
		zap.String("path", r.URL.EscapedPath()), zap.Bool("upgrade", isUpgrade(r)))
	g.auditOriginRefused(r, id)
}

// auditOriginRefused counts the refusal; the audit log gets one
// origin.refused record per caller, origin and minute (a page that retries
// in a loop cannot flood it).
func (g *Gateway) auditOriginRefused(r *http.Request, id identity.Identity) {
	ip, origin := request.ClientIP(r), clip(r.Header.Get("Origin"), 256)
	method, path, upgrade := r.Method, clip(r.URL.EscapedPath(), 256), isUpgrade(r)
	g.originRefusals.Add(ip+"\x00"+origin+"\x00"+id.Key(), func() []zap.Field {
		return []zap.Field{
			zap.String(audit.FieldSubject, id.Subject), zap.String(audit.FieldClientIP, ip), zap.String(audit.FieldOrigin, origin),
			zap.String(audit.FieldMethod, method), zap.String(audit.FieldPath, path), zap.Bool(audit.FieldUpgrade, upgrade),
		}
	})
}

// originOverflow are the members of the record that counts refusals beyond
// the aggregator's memory bound.
var originOverflow = []zap.Field{
	zap.String(audit.FieldSubject, "*"), zap.String(audit.FieldClientIP, "*"), zap.String(audit.FieldOrigin, "*"),
	zap.String(audit.FieldMethod, "*"), zap.String(audit.FieldPath, "*"), zap.Bool(audit.FieldUpgrade, false),
}

// clip bounds what an outsider chose before it is kept or written.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
