package roomsapi

import (
	"context"
	"net/http"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// AuditReader reads the audit log back, newest first (audit.Log.Recent):
// the host console's Recent events panel.
type AuditReader interface {
	Recent(ctx context.Context, f audit.Filter, o audit.RecentOptions) ([]*audit.Entry, error)
}

// E2EEState is a room's end-to-end meeting as its hosts may see it: the
// roster the gateway signed, never keys or the security code.
type E2EEState struct {
	Active  bool   `json:"active"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Members int    `json:"members"`
	Locked  bool   `json:"locked,omitempty"`
}

// E2EEStatus reports a room's end-to-end meeting (the e2ee API).
type E2EEStatus interface {
	E2EEStatus(ctx context.Context, room string) (E2EEState, error)
}

// recentLimit is how many audit records the console shows.
const recentLimit = 30

// activityEvent is one audit record as a host sees it: what happened and
// why, with the names the host already sees in the room's lists (never a
// subject, an address or a client IP).
type activityEvent struct {
	At       time.Time `json:"at"`
	Event    string    `json:"event"`
	Decision string    `json:"decision,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Role     string    `json:"role,omitempty"`
	Who      string    `json:"who,omitempty"`
	By       string    `json:"by,omitempty"`
}

// activity is GET rooms/{room}/activity.
type activity struct {
	Events []activityEvent `json:"events"`
	// EventsAvailable is false when this node cannot read its audit log.
	EventsAvailable bool       `json:"events_available"`
	E2EE            *E2EEState `json:"e2ee,omitempty"`
}

// serveActivity is GET rooms/{room}/activity: for hosts, the room's recent
// audit records (newest first) and its end-to-end state; anyone else gets
// the 404 an unknown room gets.
func (a *API) serveActivity(ctx context.Context, w http.ResponseWriter, r *http.Request, id identity.Identity, room string) {
	_, host, err := a.isHost(ctx, r, id, room)
	if err != nil {
		fail(w, err)
		return
	}
	if !host {
		notFound(w)
		return
	}
	rm, err := a.o.Store.Room(ctx, room)
	if err != nil {
		a.storeError(ctx, w, "room", err)
		return
	}
	out := activity{Events: []activityEvent{}}
	if a.o.AuditReader != nil {
		entries, err := a.o.AuditReader.Recent(ctx, audit.Filter{Room: room}, audit.RecentOptions{Limit: recentLimit})
		if err != nil {
			a.log.Warn("console: reading the audit log failed")
		} else {
			out.EventsAvailable = true
			names := knownNames(rm)
			// A host reading the console may not be in the room: their
			// own actions still carry their name.
			if _, ok := names[subjectKey(id)]; !ok {
				names[subjectKey(id)] = rooms.DisplayName(id.DisplayName())
			}
			for _, e := range entries {
				out.Events = append(out.Events, hostEvent(e, names))
			}
		}
	}
	if a.o.E2EE != nil {
		st, err := a.o.E2EE.E2EEStatus(ctx, room)
		if err != nil {
			fail(w, a.storeFailure(ctx, "e2ee_status", err))
			return
		}
		if st.Active || rm.E2EERequired {
			out.E2EE = &st
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.JSON(w, http.StatusOK, out)
}

// knownNames are the display names of everyone the room lists (in,
// waiting, banned), by subject key: a record about anyone else shows no
// name.
func knownNames(rm rooms.Room) map[rooms.SubjectKey]string {
	m := map[rooms.SubjectKey]string{}
	for _, p := range rm.Participants {
		m[p.Subject] = p.Name
	}
	for _, w := range rm.Waiting {
		m[w.Subject] = w.Name
	}
	for _, b := range rm.Bans {
		m[b.Subject] = b.Name
	}
	return m
}

func hostEvent(e *audit.Entry, names map[rooms.SubjectKey]string) activityEvent {
	name := func(issuerKey, subjectKey string) string {
		sub := e.Str(subjectKey)
		if sub == "" {
			return ""
		}
		return names[rooms.SubjectKey(e.Str(issuerKey)+"|"+sub)]
	}
	ev := activityEvent{At: e.Time, Event: e.Event, Decision: e.Str(audit.FieldDecision), Role: e.Str(audit.FieldRole),
		Reason: e.Str(audit.FieldReason)}
	if ev.Role == "" {
		// A role change shows the role given.
		ev.Role = e.Str(audit.FieldTo)
	}
	if ev.Reason == "" {
		if rs := e.Strs(audit.FieldReasons); len(rs) > 0 {
			ev.Reason = rs[0]
		}
	}
	ev.Who = name("issuer", audit.FieldSubject)
	if ev.Who == "" {
		ev.Who = name("target_issuer", audit.FieldTarget)
	}
	ev.By = name("actor_issuer", audit.FieldActor)
	return ev
}
