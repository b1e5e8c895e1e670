package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/request"
)

// authRejectMaxKeys bounds the distinct (source, reason, issuer, kid)
// counted per minute; more are folded into one overflow record, so a flood
// of tokens with made-up kids writes at most this many records a minute.
const authRejectMaxKeys = 1000

// authOverflow are the members of the record that counts rejections beyond
// authRejectMaxKeys.
var authOverflow = []zap.Field{
	zap.String(audit.FieldReason, "*"), zap.String(audit.FieldClientIP, "*"),
	zap.String(audit.FieldIssuer, "*"), zap.String(audit.FieldKID, "*"),
}

// auditAuthRejected counts a refused bearer credential: one auth.rejected
// record per source, reason, issuer and kid a minute, with how many and
// when the first and last came. Cookies that ended are ordinary expiry and
// not counted; only a presented Authorization header is.
func (g *Gateway) auditAuthRejected(r *http.Request, err error) {
	h := r.Header.Get("Authorization")
	if h == "" || !errors.Is(err, auth.ErrInvalidToken) {
		return
	}
	reason := auth.RejectReason(err)
	g.opts.Security.TokenRejected(reason)
	iss, kid := unverifiedIssuerKID(h)
	ip := request.ClientIP(r)
	g.authRejections.Add(ip+"\x00"+reason+"\x00"+iss+"\x00"+kid, func() []zap.Field {
		return []zap.Field{
			zap.String(audit.FieldReason, reason), zap.String(audit.FieldClientIP, ip),
			zap.String(audit.FieldIssuer, iss), zap.String(audit.FieldKID, kid),
		}
	})
}

// unverifiedIssuerKID reads the iss claim and the kid header of a bearer
// JWT without verifying anything, for the record of its rejection: they say
// whom the forger pretended to be. Both are "" when not parseable, and are
// cut to 128 printable ASCII bytes (an attacker chose them).
func unverifiedIssuerKID(authorization string) (iss, kid string) {
	_, token, ok := strings.Cut(authorization, " ")
	if !ok || len(token) > 16<<10 {
		return "", ""
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return "", ""
	}
	var hdr struct {
		KID any `json:"kid"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil && json.Unmarshal(b, &hdr) == nil {
		if s, ok := hdr.KID.(string); ok {
			kid = printable(s, 128)
		}
	}
	var claims struct {
		Iss any `json:"iss"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &claims) == nil {
		if s, ok := claims.Iss.(string); ok {
			iss = printable(s, 128)
		}
	}
	return iss, kid
}

// printable keeps at most n bytes of s, with anything outside printable
// ASCII replaced by '?', so a chosen value cannot forge log structure.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
