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
	// noKnock: a lobby decision is not carried out (refused instead).
	// Only a top-level page load or POST …/join may knock; an app's
	// ticketless room-path request may be admitted, but never queues.
	noKnock bool
}

type joinResult struct {
	kind        joinKind
	participant rooms.Participant
	ticket      string
	expires     time.Time
	wait        rooms.WaitID
	// message is the policy's words for a waiting client, and reason the
	// decision's first reason code (which picks their translation).
	message    string
	reason     string
	retryAfter time.Duration
	// unit is what a rate limit was about, for the words the caller sees.
	unit rooms.Unit
}

// join runs one join attempt to its end. An error means nothing was
// admitted and the caller must answer 503.
func (a *API) join(ctx context.Context, jr joinRequest) (joinResult, error) {
	key := subjectKey(jr.id)
	// The room is read for its passcode budget and its facts: one round
	// trip for everything this join reads before the policy.
	at := rooms.Attempt{Identity: key, IP: clientAddr(jr.r), Room: jr.room}
	if err := rooms.ValidateRoomID(jr.room); err != nil {
		// The routes let no such name through; a name no room can have is
		// not a reason to call the identity invalid.
		return joinResult{}, err
	}
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
	// passcode is even looked at (the room is then not read either).
	hist, facts, err := a.o.Store.StartJoin(ctx, at)
	var rl *rooms.RateLimitedError
	switch {
	case errors.As(err, &rl):
		return a.refuseRateLimited(ctx, jr, rl)
	case errors.Is(err, rooms.ErrInvalid):
		// An identity the store cannot key (absurdly long subject): no
		// room could ever admit it.
		if err := a.record(ctx, audit.EventAdmissionDecision, zap.String(audit.FieldRoom, jr.room),
			zap.String(audit.FieldSubject, jr.id.Subject), zap.String(audit.FieldIssuer, jr.id.Issuer),
			zap.String(audit.FieldDecision, audit.DecisionDeny), zap.Strings(audit.FieldReasons, []string{"invalid_identity"}),
			zap.String(audit.FieldClientIP, at.IP.String()), zap.String(audit.FieldVia, jr.via)); err != nil {
			return joinResult{}, err
		}
		return joinResult{kind: joinDenied}, nil
	case err != nil:
		return joinResult{}, a.storeFailure(ctx, "begin_join", err)
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
	var limit *rooms.RateLimitedError
	admission := rooms.Admission{Room: jr.room, Subject: key, Name: rooms.DisplayName(jr.id.DisplayName()), Role: rooms.Role(d.Role),
		Device: deviceLabel(jr.r, jr.id)}
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
	case d.Lobby && jr.noKnock:
		reasons = []string{"knock_requires_join"}
	case d.Lobby:
		admission.EmailDomain, admission.Verdict = knockFacts(jr.id, d.Member)
		w, err := a.o.Store.Knock(ctx, admission)
		code, refused := refusalReason(err)
		switch {
		case err == nil:
			res.kind, res.wait, res.message, decision = joinWaiting, w.ID, d.UserMessage, audit.DecisionLobby
			if len(d.Reasons) > 0 {
				res.reason = d.Reasons[0]
			}
		case errors.Is(err, rooms.ErrLobbyFull):
			res.kind, res.retryAfter, reasons = joinLobbyFull, lobbyFullRetry, []string{"lobby_full"}
		case refused:
			reasons = []string{code}
		default:
			return joinResult{}, a.storeFailure(ctx, "knock", err)
		}
	case slices.Contains(d.Reasons, "rate_limited"):
		// The policy's limits are about this identity and address, never
		// about the room, so saying so is no existence oracle.
		limit = policyRateLimit(d, hist)
		res.kind, res.retryAfter, res.unit = joinRateLimited, limit.RetryAfter, limit.Unit
	}
	if res.kind == joinDenied && !capacityOnly(reasons) {
		f := rooms.FailureJoin
		at.Member, at.Room = d.Member, ""
		if jr.passcode != "" && !passcodeOK {
			// Counted for every refused guess, room or no room, so the
			// backoff cannot tell which guesses hit a real room; only a
			// real passcode room's budget is charged.
			f = rooms.FailurePasscode
			a.o.Metrics.PasscodeFailure()
			if facts.Exists && facts.PasscodeRequired {
				at.Room = jr.room
			}
		}
		h, err := a.o.Store.RecordFailure(ctx, at, f)
		if err != nil {
			return joinResult{}, a.storeFailure(ctx, "record_failure", err)
		}
		if h.Room.AttackBegan {
			if err := a.recordPasscodeAttack(ctx, jr.room, h.Room); err != nil {
				return joinResult{}, err
			}
		}
	}

	role := d.Role
	if decision == audit.DecisionDeny {
		role = ""
	}
	fields := []zap.Field{
		zap.String(audit.FieldRoom, jr.room),
		zap.String(audit.FieldSubject, jr.id.Subject),
		zap.String(audit.FieldIssuer, jr.id.Issuer),
		zap.String(audit.FieldDecision, decision),
		zap.String(audit.FieldRole, role),
		zap.Strings(audit.FieldReasons, reasons),
		zap.String(audit.FieldPolicyRevision, d.Revision),
		zap.String(audit.FieldDecisionID, d.DecisionID),
		zap.String(audit.FieldClientIP, at.IP.String()),
		zap.String(audit.FieldVia, jr.via),
		zap.Any(audit.FieldInput, in),
		zap.Any(audit.FieldResult, d),
	}
	if res.kind == joinAdmitted {
		fields = append(fields, zap.String(audit.FieldParticipant, string(res.participant.ID)))
	}
	if limit != nil {
		fields = append(fields, zap.String(audit.FieldUnit, string(limit.Unit)), zap.String(audit.FieldLimit, limit.Reason),
			zap.Int(audit.FieldRetryAfterSeconds, retrySeconds(limit.RetryAfter)))
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
			zap.String(audit.FieldSubject, jr.id.Subject), zap.String(audit.FieldIssuer, jr.id.Issuer),
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
func (a *API) refuseRateLimited(ctx context.Context, jr joinRequest, rl *rooms.RateLimitedError) (joinResult, error) {
	reason := "rate_limited"
	if rl.Reason == rooms.ReasonPasscodeFailures {
		reason = "passcode_backoff"
	}
	if err := a.record(ctx, EventRateLimited,
		zap.String(audit.FieldRoom, jr.room),
		zap.String(audit.FieldSubject, jr.id.Subject),
		zap.String(audit.FieldIssuer, jr.id.Issuer),
		zap.String(audit.FieldDecision, audit.DecisionDeny),
		zap.String(audit.FieldReason, reason),
		zap.String(audit.FieldUnit, string(rl.Unit)),
		zap.String(audit.FieldLimit, rl.Reason),
		zap.String(audit.FieldClientIP, clientAddr(jr.r).String()),
		zap.Int(audit.FieldRetryAfterSeconds, retrySeconds(rl.RetryAfter)),
		zap.String(audit.FieldVia, jr.via),
	); err != nil {
		return joinResult{}, err
	}
	return joinResult{kind: joinRateLimited, retryAfter: rl.RetryAfter, unit: rl.Unit}, nil
}

// recordPasscodeAttack writes, once per attack (the one join that spent
// the room's budget, on whichever node), that the room's passcode is
// under attack: from now until the window ends, passcode entry sends
// everyone but hosts to the waiting room.
func (a *API) recordPasscodeAttack(ctx context.Context, room string, rc rooms.RoomCounts) error {
	rl := a.o.Rooms.RateLimits
	a.log.Warn("passcode attack on a room; passcode entry goes to the waiting room",
		zap.String("room", room), zap.Int("failures", rc.PasscodeFailures), zap.Duration("window", rl.RoomPasscodeWindow))
	return a.record(ctx, audit.EventRoomPasscodeAttack,
		zap.String(audit.FieldRoom, room),
		zap.String(audit.FieldUnit, string(rooms.UnitRoom)),
		zap.String(audit.FieldLimit, rooms.ReasonPasscodeAttack),
		zap.Int(audit.FieldPasscodeFailures, rc.PasscodeFailures),
		zap.Int(audit.FieldWindowSeconds, int(rl.RoomPasscodeWindow/time.Second)),
	)
}

// policyRateLimit is what a policy's rate_limited refusal was about, from
// its detail reasons, and how long it lasts: the window for counts in the
// window, the failure memory for an identity's passcode failures. An
// identity's own limits come first: they are what the person caused.
func policyRateLimit(d policy.Decision, h rooms.History) *rooms.RateLimitedError {
	switch {
	case slices.Contains(d.Reasons, "rate_limited_passcode"):
		return &rooms.RateLimitedError{Unit: rooms.UnitIdentity, Reason: rooms.ReasonPasscodeFailures,
			RetryAfter: max(h.PasscodeMemoryLeft, h.WindowLeft)}
	case slices.Contains(d.Reasons, "rate_limited_address") && !slices.Contains(d.Reasons, "rate_limited_identity"):
		return &rooms.RateLimitedError{Unit: rooms.UnitAddress, Reason: rooms.ReasonAddressFailures, RetryAfter: h.WindowLeft}
	}
	// rate_limited_identity, or a policy that does not name the unit.
	return &rooms.RateLimitedError{Unit: rooms.UnitIdentity, Reason: "join_failures", RetryAfter: h.WindowLeft}
}

// capacityOnly: a refusal only for want of room is nobody's failure, so
// it counts against no identity or address (a busy office hitting
// capacity is not an attack).
func capacityOnly(reasons []string) bool {
	return len(reasons) > 0 && !slices.ContainsFunc(reasons, func(r string) bool { return r != "room_full" })
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
