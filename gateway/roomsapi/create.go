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
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/policy"
)

// notAllowedMessage is what anyone who may neither create nor change a
// room is told, whether or not it exists.
const notAllowedMessage = "You are not allowed to create or change this meeting."

// servePut is PUT rooms/{room}: a host of an existing room changes its
// settings; anyone the policy lets create rooms creates a missing one and
// owns it. Who learns that a name is taken is the policy's decision
// (create_room puts room_exists after not_room_creator).
func (a *API) servePut(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, room string) {
	var body settingsBody
	if err := readJSON(r, &body); err != nil {
		fail(w, err)
		return
	}
	change, err := body.change(a.cfg)
	if err != nil {
		fail(w, err)
		return
	}
	facts, host, err := a.isHost(ctx, r, id, room)
	if err != nil {
		fail(w, err)
		return
	}
	actor := []zap.Field{zap.String(audit.FieldRoom, room), zap.String(audit.FieldActor, id.Subject), zap.String(audit.FieldActorIssuer, id.Issuer)}
	if facts.Exists && host {
		if err := a.hashPasscode(ctx, body, &change); err != nil {
			fail(w, err)
			return
		}
		// Recorded first: a change may open the room (unlock, no
		// passcode, more seats).
		if err := a.record(ctx, audit.EventRoomUpdate, append(actor, zap.Strings(audit.FieldChanges, body.changedFields()))...); err != nil {
			fail(w, err)
			return
		}
		if _, err := a.o.Store.Put(ctx, room, subjectKey(id), change); err != nil {
			a.putError(ctx, w, err)
			return
		}
		a.writeRoom(ctx, w, room, http.StatusOK)
		return
	}

	// Creation counts against the caller's join budget, so it cannot be
	// used to probe names or fill the store at leisure.
	hist, err := a.o.Store.BeginJoin(ctx, rooms.Attempt{Identity: subjectKey(id), IP: clientAddr(r)})
	var rl *rooms.RateLimitedError
	switch {
	case errors.As(err, &rl):
		a.tooManyResponse(false, joinResult{kind: joinRateLimited, retryAfter: rl.RetryAfter, unit: rl.Unit})(w, r)
		return
	case err != nil:
		fail(w, a.storeFailure(ctx, "begin_join", err))
		return
	}
	in := policy.Input{
		Identity: policyIdentity(id), Room: policyRoom(room, facts, id, false), Request: policyRequest(r), History: policyHistory(hist),
	}
	d := a.decideCreate(ctx, in)
	if !d.Allow || facts.Exists {
		a.refuseCreate(w, r, d, hist)
		return
	}
	if change.LobbyEnabled == nil {
		lobby := a.o.LobbyByDefault
		change.LobbyEnabled = &lobby
	}
	if err := a.hashPasscode(ctx, body, &change); err != nil {
		fail(w, err)
		return
	}
	// One create-only write: of any number of callers racing for the name,
	// on any node, exactly one creates the room and every other changes
	// nothing.
	err = a.o.Store.Create(ctx, room, subjectKey(id), change)
	switch {
	case errors.Is(err, rooms.ErrExists):
		// Lost the race: answered as if the room had existed when the
		// caller asked, so the policy again decides who learns that the
		// name is taken.
		f, err := a.o.Store.Facts(ctx, room, subjectKey(id))
		if err != nil {
			fail(w, a.storeFailure(ctx, "facts", err))
			return
		}
		in.Room = policyRoom(room, f, id, false)
		d := a.decideCreate(ctx, in)
		if d.Allow {
			// A policy that would create over an existing room is wrong;
			// the room stays its owner's either way.
			d = policy.Decision{Reasons: []string{"room_exists"}}
		}
		a.refuseCreate(w, r, d, hist)
		return
	case err != nil:
		a.putError(ctx, w, err)
		return
	}
	if err := a.record(ctx, audit.EventRoomCreate, append(actor, zap.Strings(audit.FieldSettings, body.changedFields()),
		zap.Strings(audit.FieldReasons, d.Reasons), zap.String(audit.FieldDecisionID, d.DecisionID),
		zap.String(audit.FieldPolicyRevision, d.Revision))...); err != nil {
		a.takeBackCreate(ctx, room)
		fail(w, err)
		return
	}
	a.writeRoom(ctx, w, room, http.StatusCreated)
}

// refuseCreate answers a PUT that may not create the room: 409 only for a
// caller whose decision's first reason is room_exists (the shipped policy
// puts it after not_room_creator, so only creators learn a name is taken),
// 429 for the policy's rate limit, else the one refusal every caller gets
// whether or not the room exists.
func (a *API) refuseCreate(w http.ResponseWriter, r *http.Request, d policy.Decision, hist rooms.History) {
	switch {
	case !d.Allow && len(d.Reasons) > 0 && d.Reasons[0] == "room_exists":
		msg := d.UserMessage
		if msg == "" {
			msg = "A meeting with this name already exists."
		}
		respond.JSON(w, http.StatusConflict, map[string]string{"error": "room_exists", "message": msg})
	case !d.Allow && slices.Contains(d.Reasons, "rate_limited"):
		rl := policyRateLimit(d, hist)
		a.tooManyResponse(false, joinResult{kind: joinRateLimited, retryAfter: rl.RetryAfter, unit: rl.Unit})(w, r)
	default:
		respond.Denied(w, notAllowedMessage)
	}
}

// takeBackCreate is the undo for a room whose creation the audit log could
// not record: it is suspended (locked, nobody but hosts admitted, lobby
// emptied) so that nothing stands in it the log does not show, and it ends
// with the empty-room TTL.
func (a *API) takeBackCreate(ctx context.Context, room string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := a.o.Store.Suspend(ctx, room); err != nil {
		a.log.Error("undo room creation", zap.String("room", room), zap.Error(err))
	}
}

func (a *API) hashPasscode(ctx context.Context, body settingsBody, change *rooms.SettingsChange) error {
	if body.Passcode == nil {
		return nil
	}
	h := ""
	if *body.Passcode != "" {
		var err error
		if h, err = a.o.Passcodes.Hash(ctx, *body.Passcode); err != nil {
			return &bodyError{Status: http.StatusBadRequest, Field: "passcode", Msg: "cannot be used"}
		}
	}
	change.PasscodeHash = &h
	return nil
}

func (a *API) putError(ctx context.Context, w http.ResponseWriter, err error) {
	var ie *rooms.InvalidError
	if errors.As(err, &ie) {
		fail(w, &bodyError{Status: http.StatusBadRequest, Field: ie.Field, Msg: ie.Reason})
		return
	}
	fail(w, a.storeFailure(ctx, "put", err))
}

func (a *API) writeRoom(ctx context.Context, w http.ResponseWriter, room string, status int) {
	rm, err := a.o.Store.Room(ctx, room)
	if err != nil {
		a.storeError(ctx, w, "room", err)
		return
	}
	view, err := a.hostView(ctx, rm)
	if err != nil {
		a.storeError(ctx, w, "passcode_budget", err)
		return
	}
	respond.JSON(w, status, view)
}

// hostView adds the passcode budget's state to a room with a passcode.
func (a *API) hostView(ctx context.Context, rm rooms.Room) (hostRoomView, error) {
	view := hostRoomView{Room: rm, Waiting: lobbyEntries(rm.Waiting, time.Now(), a.cfg.KnockHeartbeat)}
	if b, ok := a.o.Store.(rooms.PasscodeBudgets); ok && rm.PasscodeSet {
		rc, err := b.PasscodeBudget(ctx, rm.ID)
		if err != nil {
			return hostRoomView{}, err
		}
		view.PasscodeGuard = &passcodeGuard{Failures: rc.PasscodeFailures, Budget: a.o.Rooms.RateLimits.RoomPasscodeFailures,
			UnderAttack: rc.PasscodeAttack}
	}
	return view, nil
}

// hostRoomView is the room as its hosts see it, with the state of its
// passcode budget when it has a passcode.
type hostRoomView struct {
	rooms.Room
	// Waiting shadows Room.Waiting: each entry with its age.
	Waiting       []lobbyEntry   `json:"waiting"`
	PasscodeGuard *passcodeGuard `json:"passcode_guard,omitempty"`
}

// passcodeGuard tells hosts that their room's passcode is under attack:
// the waiting room then holds everyone who brought the right passcode.
type passcodeGuard struct {
	Failures    int  `json:"wrong_passcodes"`
	Budget      int  `json:"budget"`
	UnderAttack bool `json:"under_attack"`
}
