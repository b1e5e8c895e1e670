// Package request carries the facts the gateway establishes about one
// request (its ID and the real client IP) from the edge to the code that
// logs, audits and decides on it.
package request

import (
	"context"
	"net/http"
)

// Info is what the edge established about a request.
type Info struct {
	// ID correlates the access log, audit records and error pages.
	ID string
	// ClientIP is the peer address, or the forwarded client address when the
	// peer is a trusted proxy.
	ClientIP string
}

type ctxKey struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the Info the edge stored, or the zero Info.
func From(ctx context.Context) Info {
	i, _ := ctx.Value(ctxKey{}).(Info)
	return i
}

// ClientIP is From(r.Context()).ClientIP.
func ClientIP(r *http.Request) string { return From(r.Context()).ClientIP }
