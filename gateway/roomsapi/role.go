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
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// How a role change reaches each upstream (the role answer's "upstreams").
const (
	// roleLive: the meeting server changed the participant's rights at
	// once (LiveKit's UpdateParticipant).
	roleLive = "live"
	// roleReconnect: the gateway closes the participant's connections
	// through the upstream (close code 4005); the next connection carries
	// the new role.
	roleReconnect = "reconnect"
	// roleRejoin: the server fixed the role when the person joined
	// (BigBlueButton's join URL); the new role applies when they join again.
	roleRejoin = "rejoin"
)

// roleAnswer is the answer to a role change.
type roleAnswer struct {
	Room        string            `json:"room"`
	Participant rooms.Participant `json:"participant"`
	From        rooms.Role        `json:"from"`
	To          rooms.Role        `json:"to"`
	Changed     bool              `json:"changed"`
	Upstreams   map[string]string `json:"upstreams"`
}

// changeRole gives an admitted participant another role on a host's order.
// The audit record comes first: a change that cannot be recorded is not
// made. The store is the only place the role lives: every later request of
// the participant (its ticket names only the admission) and every node's
// host check read it there, so a ticket issued before the change cannot
// bring the old role back.
func (a *API) changeRole(ctx context.Context, w http.ResponseWriter, rt route, role rooms.Role, reason string, actor []zap.Field) {
	snap, err := a.o.Store.Room(ctx, rt.room)
	if err != nil {
		a.storeError(ctx, w, "room", err)
		return
	}
	var target rooms.Participant
	hosts := 0
	for _, p := range snap.Participants {
		if p.ID == rt.participant {
			target = p
		}
		if p.Role == rooms.RoleHost {
			hosts++
		}
	}
	if target.ID == "" {
		notFound(w)
		return
	}
	if target.Role == role {
		respond.JSON(w, http.StatusOK, roleAnswer{Room: rt.room, Participant: target, From: role, To: role, Upstreams: a.roleReach()})
		return
	}
	if target.Role == rooms.RoleHost && hosts <= 1 {
		lastHost(w)
		return
	}
	if reason == "" {
		reason = "host_changed"
	}
	iss, sub := splitKey(target.Subject)
	if err := a.record(ctx, audit.EventRoomRole, append(actor, zap.String(audit.FieldTarget, sub), zap.String(audit.FieldTargetIssuer, iss),
		zap.String(audit.FieldParticipant, string(target.ID)), zap.String(audit.FieldFrom, string(target.Role)),
		zap.String(audit.FieldTo, string(role)), zap.String(audit.FieldReason, reason))...); err != nil {
		fail(w, err)
		return
	}
	ch, err := a.o.Store.SetRole(ctx, rt.room, rt.participant, role)
	switch {
	case errors.Is(err, rooms.ErrLastHost):
		lastHost(w)
		return
	case errors.Is(err, rooms.ErrRoleNotGranted):
		respond.JSONError(w, http.StatusBadRequest, "invalid_request", "The request is not valid.")
		return
	case err != nil:
		a.storeError(ctx, w, "set_role", err)
		return
	}
	a.tellRoleUpdaters(rt.room, ch.Participant)
	respond.JSON(w, http.StatusOK, roleAnswer{Room: rt.room, Participant: ch.Participant, From: ch.From, To: ch.Participant.Role,
		Changed: ch.From != ch.Participant.Role, Upstreams: a.roleReach()})
}

func lastHost(w http.ResponseWriter) {
	respond.JSONError(w, http.StatusConflict, "last_host", "The room's last host cannot be demoted.")
}

// roleReach says, per upstream, how a role change reaches it.
func (a *API) roleReach() map[string]string {
	out := make(map[string]string, len(a.o.Adapters))
	for name := range a.o.RoomPaths {
		out[name] = roleReconnect
	}
	for name, ad := range a.o.Adapters {
		switch ad.(type) {
		case admission.RoleUpdater:
			out[name] = roleLive
		case admission.JoinRedirector:
			out[name] = roleRejoin
		default:
			out[name] = roleReconnect
		}
	}
	return out
}

// updatesLive reports whether upstream's adapter changes roles on the
// meeting server itself.
func (a *API) updatesLive(upstream string) bool {
	_, ok := a.o.Adapters[upstream].(admission.RoleUpdater)
	return ok
}

// tellRoleUpdaters asks every adapter that can change a connected
// participant's rights to do so. It runs in the background: the role has
// changed here. An adapter that fails removes the participant from its
// server instead (fail closed: a demoted person does not keep publishing);
// they reconnect through the gateway with the new role.
func (a *API) tellRoleUpdaters(room string, p rooms.Participant) {
	type updater struct {
		name string
		u    admission.RoleUpdater
	}
	var updaters []updater
	for name, ad := range a.o.Adapters {
		if u, ok := ad.(admission.RoleUpdater); ok {
			updaters = append(updaters, updater{name, u})
		}
	}
	if len(updaters) == 0 {
		return
	}
	iss, sub := splitKey(p.Subject)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, up := range updaters {
			gp := admission.Participant{Identity: identity.Identity{Issuer: iss, Subject: sub, Name: p.Name},
				Upstream: up.name, Room: room, Role: string(p.Role), ParticipantID: string(p.ID)}
			err := up.u.UpdateRole(ctx, gp)
			if err == nil {
				continue
			}
			a.log.Warn("adapter could not change a participant's role; removing it from the meeting server", zap.String("upstream", up.name),
				zap.String("room", room), zap.Error(err))
			if rm, ok := up.u.(admission.ParticipantRemover); ok {
				if err := rm.RemoveParticipant(ctx, gp); err != nil {
					a.log.Error("adapter could not remove a participant whose role changed", zap.String("upstream", up.name), zap.String("room", room), zap.Error(err))
				}
			}
		}
	}()
}

// roleChanged closes this node's connections of the participant whose role
// e changed, through every upstream that cannot change it live, so that the
// client reconnects and its next connection carries the new role.
func (a *API) roleChanged(e rooms.Event) {
	if e.Participant == nil || a.o.Live == nil {
		return
	}
	pid := string(e.Participant.ID)
	n := a.o.Live.CloseWith(func(m liveconn.Meta) bool {
		return m.Room == e.Room && m.ParticipantID == pid && !a.updatesLive(m.Upstream)
	}, liveconn.CodeRoleChanged, "role changed")
	if n > 0 {
		a.log.Info("closed live connections of a participant whose role changed", zap.String("room", e.Room), zap.Int("connections", n))
	}
}
