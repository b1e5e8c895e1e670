package demoapp

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
)

// presence is one live connection in a room, as others see it.
type presence struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Role     string `json:"role"`
	Verified bool   `json:"verified"`
}

// event is every message the server sends on the WebSocket.
type event struct {
	Type   string     `json:"type"` // welcome, joined, left, chat, sealed, error
	You    *presence  `json:"you,omitempty"`
	Roster []presence `json:"roster,omitempty"`
	Member *presence  `json:"member,omitempty"` // who joined, left or chatted
	Text   string     `json:"text,omitempty"`
	Data   string     `json:"data,omitempty"` // a sealed message's ciphertext, relayed as it came
	At     string     `json:"at,omitempty"`
}

// member is a connection's place in a room. send is buffered; a member that
// lets it fill up is too slow to keep up and is kicked rather than allowed
// to stall everyone else.
type member struct {
	presence
	seq  uint64
	send chan []byte
	kick context.CancelFunc // drops the connection at once
	bye  func()             // closes it politely, for shutdown
}

// roster holds who is in which room. Presence is per connection: two tabs
// are two members.
type roster struct {
	mu    sync.Mutex
	rooms map[string]map[*member]struct{}
	seq   uint64
}

func newRoster() *roster {
	return &roster{rooms: make(map[string]map[*member]struct{})}
}

// join adds m to room, sends it a welcome with everyone present and tells
// the others. Both happen under the lock so every member sees joins and
// leaves in one order.
func (r *roster) join(room string, m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	m.seq = r.seq
	m.ID = strconv.FormatUint(r.seq, 10)
	members := r.rooms[room]
	if members == nil {
		members = make(map[*member]struct{})
		r.rooms[room] = members
	}
	members[m] = struct{}{}
	you := m.presence
	welcome := event{Type: "welcome", You: &you, Roster: snapshot(members)}
	if m.Role == "viewer" {
		welcome = forViewer(welcome)
	}
	deliver(m, mustJSON(welcome))
	r.broadcastLocked(room, event{Type: "joined", Member: &you}, m)
}

// leave removes m and tells the others; empty rooms are forgotten.
func (r *roster) leave(room string, m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	members := r.rooms[room]
	if _, ok := members[m]; !ok {
		return
	}
	delete(members, m)
	if len(members) == 0 {
		delete(r.rooms, room)
		return
	}
	who := m.presence
	r.broadcastLocked(room, event{Type: "left", Member: &who}, nil)
}

func (r *roster) broadcast(room string, ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcastLocked(room, ev, nil)
}

// all returns every member of every room, for shutting down.
func (r *roster) all() []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*member
	for _, members := range r.rooms {
		for m := range members {
			out = append(out, m)
		}
	}
	return out
}

func (r *roster) broadcastLocked(room string, ev event, except *member) {
	msg := mustJSON(ev)
	var redacted []byte
	for m := range r.rooms[room] {
		switch {
		case m == except:
		case m.Role == "viewer":
			if redacted == nil {
				redacted = mustJSON(forViewer(ev))
			}
			deliver(m, redacted)
		default:
			deliver(m, msg)
		}
	}
}

// forViewer drops other people's email addresses from ev: guests (the
// viewer role) see names only, never the addresses of the people in the
// room.
func forViewer(ev event) event {
	if ev.Member != nil && ev.Member.Email != "" {
		p := *ev.Member
		p.Email = ""
		ev.Member = &p
	}
	if ev.Roster != nil {
		list := make([]presence, len(ev.Roster))
		copy(list, ev.Roster)
		for i := range list {
			if ev.You == nil || list[i].ID != ev.You.ID {
				list[i].Email = ""
			}
		}
		ev.Roster = list
	}
	return ev
}

func deliver(m *member, msg []byte) {
	select {
	case m.send <- msg:
	default:
		m.kick()
	}
}

func snapshot(members map[*member]struct{}) []presence {
	list := make([]*member, 0, len(members))
	for m := range members {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	out := make([]presence, len(list))
	for i, m := range list {
		out[i] = m.presence
	}
	return out
}

// mustJSON encodes an event. Events hold only strings, bools and slices of
// them, which json.Marshal cannot fail on.
func mustJSON(ev event) []byte {
	b, _ := json.Marshal(ev)
	return b
}
