package roomsapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/policy"
)

// isHost reports whether id may act as a host of room: it holds a live
// host admission (its ticket), or it holds none and the policy would admit
// it as host now. A caller holding an admission is what the admission's
// role says, as the store has it now: a host whom another host demoted is
// no longer a host (whatever the ticket it kept says) until they join
// again. A room that does not exist has no hosts.
func (a *API) isHost(ctx context.Context, r *http.Request, id identity.Identity, room string) (rooms.Facts, bool, error) {
	facts, err := a.o.Store.Facts(ctx, room, subjectKey(id))
	if err != nil {
		return facts, false, a.storeFailure(ctx, "facts", err)
	}
	if !facts.Exists {
		return facts, false, nil
	}
	held, err := a.heldTicket(ctx, r, room, id)
	var nt *noTicketError
	switch {
	case err == nil:
		return facts, held.participant.Role == rooms.RoleHost, nil
	case err != nil && !errors.As(err, &nt):
		return facts, false, err
	case err != nil && nt.presented != fromNowhere:
		// A ticket that fails refuses the request; the policy is not
		// asked instead.
		return facts, false, nil
	}
	dev, err := a.device(ctx, room, id)
	if err != nil {
		return facts, false, err
	}
	d := a.decide(ctx, policy.Input{
		Identity: policyIdentity(id), Room: policyRoom(room, facts, id, false), Device: dev, Request: policyRequest(r),
	})
	return facts, d.Allow && d.Role == policy.RoleHost, nil
}

// serveHostAction runs the calls only a host of the room may make. Anyone
// else gets the 404 an unknown room gets.
func (a *API) serveHostAction(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, rt route) {
	var rb removeBody
	var ub unbanBody
	var role rooms.Role
	var reason string
	switch rt.op {
	case opRole:
		var b roleBody
		if err := readJSON(r, &b); err != nil {
			fail(w, err)
			return
		}
		var err error
		if role, err = parseRole(b); err != nil {
			fail(w, err)
			return
		}
		reason = b.Reason
	case opRemove, opLobbyDeny:
		if err := readJSON(r, &rb); err != nil {
			fail(w, err)
			return
		}
		if err := parseRemove(rb); err != nil {
			fail(w, err)
			return
		}
	case opUnban:
		if err := readJSON(r, &ub); err != nil {
			fail(w, err)
			return
		}
		if err := parseUnban(ub); err != nil {
			fail(w, err)
			return
		}
	}
	_, host, err := a.isHost(ctx, r, id, rt.room)
	if err != nil {
		fail(w, err)
		return
	}
	if !host {
		notFound(w)
		return
	}
	actor := []zap.Field{zap.String(audit.FieldRoom, rt.room), zap.String(audit.FieldActor, id.Subject), zap.String(audit.FieldActorIssuer, id.Issuer)}
	switch rt.op {
	case opGetRoom:
		room, err := a.o.Store.Room(ctx, rt.room)
		if errors.Is(err, rooms.ErrNotFound) {
			notFound(w)
			return
		} else if err != nil {
			fail(w, a.storeFailure(ctx, "room", err))
			return
		}
		view, err := a.hostView(ctx, room)
		if err != nil {
			fail(w, a.storeFailure(ctx, "passcode_budget", err))
			return
		}
		respond.JSON(w, http.StatusOK, view)
	case opLock:
		if err := a.o.Store.Lock(ctx, rt.room); err != nil {
			a.storeError(ctx, w, "lock", err)
			return
		}
		if err := a.record(ctx, audit.EventRoomLock, actor...); err != nil {
			fail(w, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"room": rt.room, "locked": true})
	case opUnlock:
		// Opening the room widens access: recorded before it happens.
		if err := a.record(ctx, audit.EventRoomUnlock, actor...); err != nil {
			fail(w, err)
			return
		}
		if err := a.o.Store.Unlock(ctx, rt.room); err != nil {
			a.storeError(ctx, w, "unlock", err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"room": rt.room, "locked": false})
	case opSuspend:
		snap, _ := a.o.Store.Room(ctx, rt.room)
		rm, err := a.o.Store.Suspend(ctx, rt.room)
		if err != nil {
			a.storeError(ctx, w, "suspend", err)
			return
		}
		a.tellAdapters(rt.room, snap.Participants, rm.Revoked)
		if err := a.record(ctx, audit.EventRoomSuspend, append(actor, zap.String(audit.FieldReason, "host_suspended"), zap.Int(audit.FieldRemoved, len(rm.Revoked)))...); err != nil {
			fail(w, err)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]any{"room": rt.room, "removed": len(rm.Revoked)})
	case opRemove:
		a.removeParticipant(ctx, w, rt, rb, actor)
	case opRole:
		a.changeRole(ctx, w, rt, role, reason, actor)
	case opLobbyAdmit:
		a.admitWaiting(ctx, w, rt, actor)
	case opLobbyDeny:
		a.denyWaiting(ctx, w, rt, rb, actor)
	case opUnban:
		iss, sub := splitKey(rooms.SubjectKey(ub.Subject))
		if err := a.record(ctx, audit.EventRoomUpdate, append(actor, zap.String(audit.FieldChanges, "unban"),
			zap.String(audit.FieldTarget, sub), zap.String(audit.FieldTargetIssuer, iss))...); err != nil {
			fail(w, err)
			return
		}
		if err := a.o.Store.Unban(ctx, rt.room, rooms.SubjectKey(ub.Subject)); err != nil {
			a.storeError(ctx, w, "unban", err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	default:
		notFound(w)
	}
}

// storeError answers a failed host action: the room or entry is gone
// (404), or the store failed (503).
func (a *API) storeError(ctx context.Context, w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, rooms.ErrNotFound), errors.Is(err, rooms.ErrNotAdmitted):
		notFound(w)
	case errors.Is(err, rooms.ErrRoomFull):
		respond.JSONError(w, http.StatusConflict, "room_full", "The room is full.")
	case errors.Is(err, rooms.ErrInvalid):
		respond.JSONError(w, http.StatusBadRequest, "invalid_request", "The request is not valid.")
	default:
		fail(w, a.storeFailure(ctx, op, err))
	}
}

func (a *API) removeParticipant(ctx context.Context, w http.ResponseWriter, rt route, b removeBody, actor []zap.Field) {
	snap, err := a.o.Store.Room(ctx, rt.room)
	if err != nil {
		a.storeError(ctx, w, "room", err)
		return
	}
	var target rooms.Participant
	for _, p := range snap.Participants {
		if p.ID == rt.participant {
			target = p
		}
	}
	rm, err := a.o.Store.Remove(ctx, rt.room, rt.participant, b.Ban)
	if err != nil {
		a.storeError(ctx, w, "remove", err)
		return
	}
	a.tellAdapters(rt.room, snap.Participants, rm.Revoked)
	if target.Subject == "" {
		target.Subject = rm.Subject
	}
	iss, sub := splitKey(target.Subject)
	reason := b.Reason
	if reason == "" {
		reason = "host_removed"
	}
	fields := append(actor, zap.String(audit.FieldTarget, sub), zap.String(audit.FieldTargetIssuer, iss), zap.String(audit.FieldReason, reason),
		zap.String(audit.FieldParticipant, string(rt.participant)), zap.Int(audit.FieldRevoked, len(rm.Revoked)))
	if err := a.record(ctx, audit.EventRoomRemove, fields...); err != nil {
		fail(w, err)
		return
	}
	if b.Ban {
		if err := a.record(ctx, audit.EventRoomBan, append(fields[:len(actor)+3:len(actor)+3],
			zap.String(audit.FieldUntil, "room end + "+a.cfg.BanTTL.String()))...); err != nil {
			fail(w, err)
			return
		}
	}
	respond.JSON(w, http.StatusOK, map[string]any{"room": rt.room, "revoked": rm.Revoked, "banned": b.Ban})
}

func (a *API) admitWaiting(ctx context.Context, w http.ResponseWriter, rt route, actor []zap.Field) {
	p, err := a.o.Store.AdmitWaiting(ctx, rt.room, rt.wait)
	if err != nil {
		a.storeError(ctx, w, "admit_waiting", err)
		return
	}
	iss, sub := splitKey(p.Subject)
	if err := a.record(ctx, audit.EventLobbyAdmit, append(actor, zap.String(audit.FieldTarget, sub), zap.String(audit.FieldTargetIssuer, iss),
		zap.String(audit.FieldRole, string(p.Role)), zap.String(audit.FieldParticipant, string(p.ID)))...); err != nil {
		// Nobody is let in unrecorded: take the admission back.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := a.o.Store.Remove(uctx, rt.room, p.ID, false); rerr != nil && !errors.Is(rerr, rooms.ErrNotAdmitted) {
			a.log.Error("undo lobby admission", zap.Error(rerr))
		}
		fail(w, err)
		return
	}
	respond.JSON(w, http.StatusOK, map[string]any{"room": rt.room, "participant": p})
}

func (a *API) denyWaiting(ctx context.Context, w http.ResponseWriter, rt route, b removeBody, actor []zap.Field) {
	o, err := a.o.Store.WaitStatus(ctx, rt.room, rt.wait)
	if err != nil {
		a.storeError(ctx, w, "wait_status", err)
		return
	}
	if o.Status != rooms.Waiting {
		notFound(w)
		return
	}
	if err := a.o.Store.DenyWaiting(ctx, rt.room, rt.wait, b.Ban); err != nil {
		a.storeError(ctx, w, "deny_waiting", err)
		return
	}
	iss, sub := splitKey(o.Subject)
	reason := b.Reason
	if reason == "" {
		reason = "host_denied"
	}
	fields := append(actor, zap.String(audit.FieldTarget, sub), zap.String(audit.FieldTargetIssuer, iss), zap.String(audit.FieldReason, reason))
	if err := a.record(ctx, audit.EventLobbyDeny, fields...); err != nil {
		fail(w, err)
		return
	}
	if b.Ban {
		if err := a.record(ctx, audit.EventRoomBan, append(fields, zap.String(audit.FieldUntil, "room end + "+a.cfg.BanTTL.String()))...); err != nil {
			fail(w, err)
			return
		}
	}
	respond.JSON(w, http.StatusOK, map[string]any{"room": rt.room, "wait_id": rt.wait, "banned": b.Ban})
}

// tellAdapters asks every upstream adapter that can remove participants
// from its meeting server to drop the revoked ones, so media stops too, not
// only the gateway's connections. It runs in the background: the kick has
// already happened here.
func (a *API) tellAdapters(room string, known []rooms.Participant, revoked []rooms.ParticipantID) {
	type remover struct {
		name string
		r    admission.ParticipantRemover
	}
	var removers []remover
	for name, ad := range a.o.Adapters {
		if r, ok := ad.(admission.ParticipantRemover); ok {
			removers = append(removers, remover{name, r})
		}
	}
	if len(removers) == 0 || len(revoked) == 0 {
		return
	}
	byID := make(map[rooms.ParticipantID]rooms.Participant, len(known))
	for _, p := range known {
		byID[p.ID] = p
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, pid := range revoked {
			p, ok := byID[pid]
			if !ok {
				continue
			}
			iss, sub := splitKey(p.Subject)
			for _, rm := range removers {
				gp := admission.Participant{
					Identity: identity.Identity{Issuer: iss, Subject: sub, Name: p.Name},
					Upstream: rm.name, Room: room, Role: string(p.Role), ParticipantID: string(p.ID),
				}
				if err := rm.r.RemoveParticipant(ctx, gp); err != nil {
					a.log.Warn("adapter could not remove participant", zap.String("upstream", rm.name), zap.String("room", room), zap.Error(err))
				}
			}
		}
	}()
}

// lobbyEntry is a waiting entry as a host sees it: how long the person has
// waited, and what from, so two knocks by one name are never confused.
// Live says its client renewed it within two heartbeats: a knock that is
// not live is someone who has probably gone (closed the tab) and whose entry
// ends at knock_ttl.
type lobbyEntry struct {
	rooms.WaitEntry
	AgeSeconds int  `json:"age_seconds"`
	Live       bool `json:"live"`
}

// lobbyEntries adds each entry's age and liveness at now; heartbeat is
// rooms.knock_heartbeat.
func lobbyEntries(ws []rooms.WaitEntry, now time.Time, heartbeat time.Duration) []lobbyEntry {
	out := make([]lobbyEntry, 0, len(ws))
	for _, w := range ws {
		out = append(out, lobbyEntry{WaitEntry: w, AgeSeconds: max(int(now.Sub(w.Since)/time.Second), 0),
			Live: now.Sub(w.LastSeen) <= 2*heartbeat})
	}
	return out
}
