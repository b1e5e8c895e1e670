package roomsapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/policy"
)

// joinKind is how a join ended.
type joinKind int

const (
	joinDenied joinKind = iota
	joinAdmitted
	joinWaiting
	joinRateLimited
	joinLobbyFull
)

// lobbyFullRetry is what a knock refused for a full waiting list is told to
// wait: long enough not to hammer, short enough to get a place as the host
// works through the list.
const lobbyFullRetry = 30 * time.Second

type joinRequest struct {
	id       identity.Identity
	room     string
	passcode string
	r        *http.Request
	// via is "api" or "proxy", for the audit record.
	via string
}

type joinResult struct {
	kind        joinKind
	participant rooms.Participant
	ticket      string
	expires     time.Time
	wait        rooms.WaitID
	// message is the policy's words for a waiting client.
	message    string
	retryAfter time.Duration
}

// join runs one join attempt to its end. An error means nothing was
// admitted and the caller must answer 503.
func (a *API) join(ctx context.Context, jr joinRequest) (joinResult, error) {
	key := subjectKey(jr.id)
	at := rooms.Attempt{Identity: key, IP: clientAddr(jr.r)}
	release, ok := a.slot(ctx)
	if !ok {
		return joinResult{}, ctx.Err()
	}
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	// Counting first: a blocked identity or IP is refused before its
	// passcode is even looked at.
	hist, err := a.o.Store.BeginJoin(ctx, at)
	var rl *rooms.RateLimitedError
	switch {
	case errors.As(err, &rl):
		return a.refuseRateLimited(ctx, jr, rl.RetryAfter, rl.Backoff)
	case errors.Is(err, rooms.ErrInvalid):
		// An identity the store cannot key (absurdly long subject): no
		// room could ever admit it.
		if err := a.record(ctx, audit.EventAdmissionDecision, zap.String(audit.FieldRoom, jr.room),
			zap.String(audit.FieldSubject, jr.id.Subject), zap.String("issuer", jr.id.Issuer),
			zap.String(audit.FieldDecision, audit.DecisionDeny), zap.Strings(audit.FieldReasons, []string{"invalid_identity"}),
			zap.String(audit.FieldClientIP, at.IP.String()), zap.String("via", jr.via)); err != nil {
			return joinResult{}, err
		}
		return joinResult{kind: joinDenied}, nil
	case err != nil:
		return joinResult{}, a.storeFailure(ctx, "begin_join", err)
	}
	facts, err := a.o.Store.Facts(ctx, jr.room, key)
	if err != nil {
		return joinResult{}, a.storeFailure(ctx, "facts", err)
	}
	dev, err := a.device(ctx, jr.room, jr.id)
	if err != nil {
		a.log.Error("device facts failed; refusing", zap.String("room", jr.room), zap.Error(err))
		return joinResult{}, err
	}
	passcodeOK := a.checkPasscode(ctx, facts.PasscodeHash, jr.passcode)
	in := policy.Input{
		Identity: policyIdentity(jr.id),
		Room:     policyRoom(jr.room, facts, jr.id, passcodeOK),
		Device:   dev,
		Request:  policyRequest(jr.r),
		History:  policyHistory(hist),
	}
	d := a.o.Policy.Decide(ctx, in)
	release()
	released = true

	res := joinResult{kind: joinDenied}
	decision, reasons := audit.DecisionDeny, d.Reasons
	admission := rooms.Admission{Room: jr.room, Subject: key, Name: rooms.DisplayName(jr.id.DisplayName()), Role: rooms.Role(d.Role)}
	switch {
	case d.Allow:
		p, err := a.o.Store.Admit(ctx, admission)
		if code, ok := refusalReason(err); ok {
			// The store holds the line the policy drew on older facts:
			// capacity under a storm, a lock or ban that just happened.
			reasons = []string{code}
		} else if err != nil {
			return joinResult{}, a.storeFailure(ctx, "admit", err)
		} else {
			res.kind, res.participant, decision = joinAdmitted, p, audit.DecisionAllow
		}
	case d.Lobby:
		w, err := a.o.Store.Knock(ctx, admission)
		code, refused := refusalReason(err)
		switch {
		case err == nil:
			res.kind, res.wait, res.message, decision = joinWaiting, w.ID, d.UserMessage, audit.DecisionLobby
		case errors.Is(err, rooms.ErrLobbyFull):
			res.kind, res.retryAfter, reasons = joinLobbyFull, lobbyFullRetry, []string{"lobby_full"}
		case refused:
			reasons = []string{code}
		default:
			return joinResult{}, a.storeFailure(ctx, "knock", err)
		}
	case slices.Contains(d.Reasons, "rate_limited"):
		// The policy's limits are about this identity and IP, never about
		// the room, so saying so is no existence oracle.
		res.kind = joinRateLimited
		res.retryAfter = time.Duration(max(hist.WindowSeconds, 1)) * time.Second
	}
	if res.kind == joinDenied {
		f := rooms.FailureJoin
		if jr.passcode != "" && !passcodeOK {
			// Counted for every refused guess, room or no room, so the
			// backoff cannot tell which guesses hit a real room.
			f = rooms.FailurePasscode
		}
		if _, err := a.o.Store.RecordFailure(ctx, at, f); err != nil {
			return joinResult{}, a.storeFailure(ctx, "record_failure", err)
		}
	}

	role := d.Role
	if decision == audit.DecisionDeny {
		role = ""
	}
	fields := []zap.Field{
		zap.String(audit.FieldRoom, jr.room),
		zap.String(audit.FieldSubject, jr.id.Subject),
		zap.String("issuer", jr.id.Issuer),
		zap.String(audit.FieldDecision, decision),
		zap.String(audit.FieldRole, role),
		zap.Strings(audit.FieldReasons, reasons),
		zap.String(audit.FieldPolicyRevision, d.Revision),
		zap.String(audit.FieldDecisionID, d.DecisionID),
		zap.String(audit.FieldClientIP, at.IP.String()),
		zap.String("via", jr.via),
		zap.Any(audit.FieldInput, in),
		zap.Any(audit.FieldResult, d),
	}
	if res.kind == joinAdmitted {
		fields = append(fields, zap.String("participant", string(res.participant.ID)))
	}
	if err := a.record(ctx, audit.EventAdmissionDecision, fields...); err != nil {
		a.undo(ctx, jr.room, res)
		return joinResult{}, err
	}
	switch res.kind {
	case joinAdmitted:
		tok, exp, err := a.o.Tickets.Issue(jr.room, res.participant, binding(jr.id))
		if err != nil {
			a.undo(ctx, jr.room, res)
			a.log.Error("issue ticket", zap.Error(err))
			return joinResult{}, err
		}
		res.ticket, res.expires = tok, exp
	case joinWaiting:
		if err := a.record(ctx, audit.EventLobbyKnock, zap.String(audit.FieldRoom, jr.room),
			zap.String(audit.FieldSubject, jr.id.Subject), zap.String("issuer", jr.id.Issuer),
			zap.String(audit.FieldDecisionID, d.DecisionID), zap.String(audit.FieldRole, d.Role)); err != nil {
			a.undo(ctx, jr.room, res)
			return joinResult{}, err
		}
	}
	return res, nil
}

// refusalReason maps the store's refusals to the policy's reason codes.
func refusalReason(err error) (string, bool) {
	switch {
	case errors.Is(err, rooms.ErrRoomFull):
		return "room_full", true
	case errors.Is(err, rooms.ErrLocked):
		return "room_locked", true
	case errors.Is(err, rooms.ErrBanned):
		return "banned", true
	case errors.Is(err, rooms.ErrNotFound):
		return "room_not_found", true
	case errors.Is(err, rooms.ErrInvalid):
		// A decision the store cannot carry out (a role it does not
		// know): refused, never guessed at.
		return "invalid_admission", true
	}
	return "", false
}

// undo takes back an admission or knock that could not be recorded or
// ticketed: nothing stands that the audit log does not show.
func (a *API) undo(ctx context.Context, room string, res joinResult) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch res.kind {
	case joinAdmitted:
		if err := a.o.Store.Leave(ctx, room, res.participant.ID); err != nil && !errors.Is(err, rooms.ErrNotAdmitted) {
			a.log.Error("undo admission", zap.String("room", room), zap.Error(err))
		}
	case joinWaiting:
		if err := a.o.Store.DenyWaiting(ctx, room, res.wait, false); err != nil && !errors.Is(err, rooms.ErrNotFound) {
			a.log.Error("undo knock", zap.String("room", room), zap.Error(err))
		}
	}
}

// checkPasscode reports whether passcode opens a room with hash. A given
// passcode always costs one Argon2id, against a dummy hash when the room
// has none (or does not exist), so the time taken says nothing about the
// room.
func (a *API) checkPasscode(ctx context.Context, hash, passcode string) bool {
	if passcode == "" {
		return false
	}
	h := hash
	if h == "" {
		h = a.dummyHash
	}
	ok, err := a.o.Passcodes.Verify(ctx, h, passcode)
	if err != nil {
		a.log.Error("passcode check failed; treated as wrong", zap.Error(err))
		return false
	}
	return ok && hash != ""
}

// refuseRateLimited records and answers a join the store refused before
// anything else was read.
func (a *API) refuseRateLimited(ctx context.Context, jr joinRequest, retry time.Duration, backoff bool) (joinResult, error) {
	reason := "rate_limited"
	if backoff {
		reason = "passcode_backoff"
	}
	if err := a.record(ctx, EventRateLimited,
		zap.String(audit.FieldRoom, jr.room),
		zap.String(audit.FieldSubject, jr.id.Subject),
		zap.String("issuer", jr.id.Issuer),
		zap.String(audit.FieldDecision, audit.DecisionDeny),
		zap.String(audit.FieldReason, reason),
		zap.String(audit.FieldClientIP, clientAddr(jr.r).String()),
		zap.Int("retry_after_seconds", retrySeconds(retry)),
		zap.String("via", jr.via),
	); err != nil {
		return joinResult{}, err
	}
	return joinResult{kind: joinRateLimited, retryAfter: retry}, nil
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
