package e2eeapi

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
)

const (
	eventKeyRegistered = audit.EventE2EEKeyRegistered
	eventEpoch         = audit.EventE2EEEpoch
	eventRejected      = audit.EventE2EERejected
)

type causeKey struct{}

// withCause tells the audit record of any epoch started under ctx why it happened (the rooms event, or
// "registered", "admitted").
func withCause(ctx context.Context, cause string) context.Context {
	return context.WithValue(ctx, causeKey{}, cause)
}

func causeOf(ctx context.Context) string {
	c, _ := ctx.Value(causeKey{}).(string)
	return c
}

// onEvent is every Authority's OnEvent. Registrations are recorded by the handler itself, which fails closed;
// epochs and refusals cannot be undone, so a failed record is logged as an error.
func (h *Handler) onEvent(ctx context.Context, e e2ee.Event) {
	switch e.Kind {
	case e2ee.EventEpoch:
		reason := map[string]string{
			"admit": "member_joined", "remove": "member_removed", "lock": "room_locked", "unlock": "room_unlocked", "rekey": "rekey",
			"renew": "credential_renewed", "expire": "credential_expired",
		}[e.Op]
		if e.Epoch == 1 {
			reason = "room_started"
		}
		h.recordEpoch(ctx, e.Room, e.Instance, e.Epoch, e.Members, reason, causeOf(ctx))
	case e2ee.EventRejected:
		_, code := e2eehttp.ErrorStatus(e.Err)
		h.auditRejected(ctx, e.Room, e.Instance, e.Identity.Subject, e.Credential, e.Op, code)
	}
}

func (h *Handler) auditEpoch(ctx context.Context, room, instance string, epoch uint64, members int, reason string) {
	h.recordEpoch(ctx, room, instance, epoch, members, reason, causeOf(ctx))
}

func (h *Handler) recordEpoch(ctx context.Context, room, instance string, epoch uint64, members int, reason, cause string) {
	fields := []zap.Field{zap.String(audit.FieldRoom, room), zap.String(audit.FieldInstance, instance), zap.Uint64(audit.FieldEpoch, epoch),
		zap.String(audit.FieldReason, reason), zap.Int(audit.FieldMembers, members)}
	if cause != "" {
		fields = append(fields, zap.String(audit.FieldCause, cause))
	}
	if err := h.opts.Audit.Record(context.WithoutCancel(ctx), eventEpoch, fields...); err != nil {
		h.log.Error("e2ee: audit epoch", zap.String("room", room), zap.Uint64("epoch", epoch), zap.Error(err))
	}
}

func (h *Handler) auditRejected(ctx context.Context, room, instance, subject string, cred e2ee.Hash, op, reason string) {
	fields := []zap.Field{zap.String(audit.FieldRoom, room), zap.String(audit.FieldSubject, subject), zap.String(audit.FieldReason, reason), zap.String(audit.FieldOp, op)}
	if instance != "" {
		fields = append(fields, zap.String(audit.FieldInstance, instance))
	}
	if !cred.IsZero() {
		fields = append(fields, zap.String(audit.FieldKeyID, cred.String()))
	}
	if err := h.opts.Audit.Record(context.WithoutCancel(ctx), eventRejected, fields...); err != nil {
		h.log.Error("e2ee: audit rejection", zap.String("room", room), zap.String("op", op), zap.Error(err))
	}
}

// auditRefusal records a message refused before it reached the Authority (which records its own refusals).
func (h *Handler) auditRefusal(ctx context.Context, room string, id identity.Identity, op string, err error) {
	var reason string
	switch {
	case errors.Is(err, errUnavailable):
		return // nothing was decided about the caller
	case errors.Is(err, errNotAdmitted), errors.Is(err, errNotRegistered):
		reason = "not_admitted"
	default:
		var status int
		if status, reason = e2eehttp.ErrorStatus(err); status >= http.StatusInternalServerError {
			return
		}
	}
	h.auditRejected(ctx, room, "", id.Subject, e2ee.Hash{}, op, reason)
}
