package demoapp

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRoster_ViewersNeverSeeOthersEmail: a guest (viewer) in the room
// learns names, never addresses, from the welcome, from joins and from
// chat; participants still see them.
func TestRoster_ViewersNeverSeeOthersEmail(t *testing.T) {
	r := newRoster()
	newMember := func(name, email, role string) *member {
		return &member{presence: presence{Name: name, Email: email, Role: role}, send: make(chan []byte, 16), kick: func() {}}
	}
	alice := newMember("Alice", "alice@example.com", "host")
	eve := newMember("Eve", "eve@guest.test", "viewer")
	bob := newMember("Bob", "bob@example.com", "participant")
	r.join("standup", alice)
	r.join("standup", eve)
	r.join("standup", bob)
	r.broadcast("standup", event{Type: "chat", Member: &bob.presence, Text: "hi"})
	drain := func(m *member) string {
		var all []string
		for len(m.send) > 0 {
			all = append(all, string(<-m.send))
		}
		return strings.Join(all, "\n")
	}
	got := drain(eve)
	if strings.Contains(got, "alice@example.com") || strings.Contains(got, "bob@example.com") {
		t.Errorf("the viewer saw others' addresses: %s", got)
	}
	var welcome event
	if err := json.Unmarshal([]byte(strings.SplitN(got, "\n", 2)[0]), &welcome); err != nil || welcome.You == nil || welcome.You.Email != "eve@guest.test" {
		t.Errorf("the viewer's own welcome lost her address: %s", got)
	}
	if got := drain(alice); !strings.Contains(got, "bob@example.com") || !strings.Contains(got, "eve@guest.test") {
		t.Errorf("the host does not see addresses: %s", got)
	}
}
