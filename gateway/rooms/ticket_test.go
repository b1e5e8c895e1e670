package rooms_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newTickets(t testing.TB, clock *fakeClock, k []byte, previous ...[]byte) *rooms.Tickets {
	t.Helper()
	tk, err := rooms.NewTickets(rooms.TicketOptions{Key: k, PreviousKeys: previous, TTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

var (
	alice   = rooms.Participant{ID: rooms.NewParticipantID(), Subject: "https://idp|alice", Role: rooms.RoleParticipant}
	session = "session-7f3c9a1e5b"
)

func TestTicket_VerifyReturnsWhatWasIssued(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	tk := newTickets(t, clock, key(1))
	for _, role := range []rooms.Role{rooms.RoleHost, rooms.RoleParticipant, rooms.RoleViewer} {
		p := alice
		p.Role = role
		token, exp, err := tk.Issue("weekly-sync", p, session)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(clock.now.Add(time.Minute)) {
			t.Fatalf("expires %s, want issue time + TTL", exp)
		}
		got, err := tk.Verify(token, "weekly-sync", session)
		want := rooms.Ticket{Room: "weekly-sync", Participant: p.ID, Role: role, ExpiresAt: exp}
		if err != nil || got != want {
			t.Fatalf("Verify = %+v, %v; want %+v", got, err, want)
		}
	}
}

func TestTicket_HostileTokensAreRejected(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	tk := newTickets(t, clock, key(1))
	token, _, err := tk.Issue("weekly-sync", alice, session)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	forged, _, _ := newTickets(t, clock, key(2)).Issue("weekly-sync", alice, session)
	cases := []struct {
		name, token, room, binding string
	}{
		{"empty", "", "weekly-sync", session},
		{"not base64", "!!!!", "weekly-sync", session},
		{"padded base64", token + "==", "weekly-sync", session},
		{"standard base64 alphabet", base64.RawStdEncoding.EncodeToString(raw) + "+/", "weekly-sync", session},
		{"truncated", token[:len(token)-1], "weekly-sync", session},
		{"mac cut off", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-32]), "weekly-sync", session},
		{"extended", token + "AAAA", "weekly-sync", session},
		{"huge", strings.Repeat("A", 1<<16), "weekly-sync", session},
		{"signed by another key", forged, "weekly-sync", session},
		{"for another room", token, "board-meeting", session},
		{"room prefix", token, "weekly-syn", session},
		{"another session", token, "weekly-sync", "session-other"},
		{"empty session", token, "weekly-sync", ""},
	}
	for _, tc := range cases {
		if _, err := tk.Verify(tc.token, tc.room, tc.binding); !errors.Is(err, rooms.ErrTicketInvalid) {
			t.Errorf("%s: err = %v, want ErrTicketInvalid", tc.name, err)
		}
	}
	// Every single-bit change anywhere (role, expiry, participant, room, MAC)
	// must be caught.
	for i := range raw {
		for bit := range 8 {
			b := bytes.Clone(raw)
			b[i] ^= 1 << bit
			if _, err := tk.Verify(base64.RawURLEncoding.EncodeToString(b), "weekly-sync", session); err == nil {
				t.Fatalf("flipping bit %d of byte %d was accepted", bit, i)
			}
		}
	}
}

func TestTicket_ExpiresAtItsTime(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	tk := newTickets(t, clock, key(1))
	token, exp, _ := tk.Issue("r", alice, session)
	clock.now = exp.Add(-time.Second)
	if _, err := tk.Verify(token, "r", session); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	clock.now = exp
	if _, err := tk.Verify(token, "r", session); !errors.Is(err, rooms.ErrTicketExpired) {
		t.Fatalf("at expiry: err = %v, want ErrTicketExpired", err)
	}
}

func TestTicket_KeyRotationAcceptsPreviousKeysOnly(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	old, _, _ := newTickets(t, clock, key(1)).Issue("r", alice, session)
	rotated := newTickets(t, clock, key(2), key(1))
	if _, err := rotated.Verify(old, "r", session); err != nil {
		t.Fatalf("ticket from the previous key after rotation: %v", err)
	}
	fresh, _, _ := rotated.Issue("r", alice, session)
	if _, err := newTickets(t, clock, key(1)).Verify(fresh, "r", session); !errors.Is(err, rooms.ErrTicketInvalid) {
		t.Fatalf("node without the new key accepted its ticket: %v", err)
	}
	if _, err := newTickets(t, clock, key(3)).Verify(old, "r", session); !errors.Is(err, rooms.ErrTicketInvalid) {
		t.Fatalf("retired key still verifies: %v", err)
	}
}

func TestTicket_DoesNotRevealItsSession(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	tk := newTickets(t, clock, key(1))
	token, _, _ := tk.Issue("r", alice, session)
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	if bytes.Contains(raw, []byte(session)) || strings.Contains(token, session) {
		t.Fatal("the ticket carries the session id in clear")
	}
	if bytes.Contains(raw, []byte(alice.Subject)) {
		t.Fatal("the ticket carries the subject in clear")
	}
	if len(token) > 200 {
		t.Fatalf("ticket is %d characters; want compact (< 200) for a short room id", len(token))
	}
}

func TestNewTickets_RejectsWeakOptions(t *testing.T) {
	cases := []struct {
		name  string
		opts  rooms.TicketOptions
		field string
	}{
		{"no key", rooms.TicketOptions{}, "tickets.key"},
		{"short key", rooms.TicketOptions{Key: make([]byte, 31)}, "tickets.key"},
		{"short previous key", rooms.TicketOptions{Key: key(1), PreviousKeys: [][]byte{key(2), {1}}}, "tickets.previous_keys[1]"},
		{"ttl too long", rooms.TicketOptions{Key: key(1), TTL: 2 * time.Hour}, "tickets.ttl"},
		{"negative ttl", rooms.TicketOptions{Key: key(1), TTL: -time.Second}, "tickets.ttl"},
	}
	for _, tc := range cases {
		_, err := rooms.NewTickets(tc.opts)
		var inv *rooms.InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field {
			t.Errorf("%s: err = %v, want InvalidError on %s", tc.name, err, tc.field)
		}
	}
}

func TestTicket_IssueRejectsBadInput(t *testing.T) {
	tk := newTickets(t, &fakeClock{now: time.Unix(1_800_000_000, 0)}, key(1))
	bad := alice
	bad.Role = "admin"
	noID := alice
	noID.ID = "short"
	for name, f := range map[string]func() error{
		"bad role":      func() error { _, _, err := tk.Issue("r", bad, session); return err },
		"bad id":        func() error { _, _, err := tk.Issue("r", noID, session); return err },
		"bad room":      func() error { _, _, err := tk.Issue("r/../x", alice, session); return err },
		"empty binding": func() error { _, _, err := tk.Issue("r", alice, ""); return err },
		"room too long": func() error { _, _, err := tk.Issue(strings.Repeat("r", 129), alice, session); return err },
		"empty room":    func() error { _, _, err := tk.Issue("", alice, session); return err },
	} {
		if err := f(); !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// FuzzVerifyTicket feeds Verify arbitrary tokens: it must never panic and
// never accept anything but the one token the key issued.
func FuzzVerifyTicket(f *testing.F) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	tk := newTickets(f, clock, key(1))
	p := rooms.Participant{ID: "AAAAAAAAAAAAAAAAAAAAAA", Role: rooms.RoleHost}
	issued, _, err := tk.Issue("room-1", p, session)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(issued)
	f.Add("")
	f.Add(issued[:40])
	f.Add(strings.Repeat("_", 150))
	f.Fuzz(func(t *testing.T, token string) {
		got, err := tk.Verify(token, "room-1", session)
		if err != nil {
			if !errors.Is(err, rooms.ErrTicketInvalid) && !errors.Is(err, rooms.ErrTicketExpired) {
				t.Fatalf("error %v is neither invalid nor expired", err)
			}
			return
		}
		if token != issued || got.Participant != p.ID || got.Role != rooms.RoleHost {
			t.Fatalf("accepted a token that was never issued: %q -> %+v", token, got)
		}
	})
}

// TestTickets_ConcurrentUseKeepsEachTicketItsOwn: the HMACs are reused
// across calls, so many goroutines issue and verify at once, each with its
// own binding, under two keys (one retired); a ticket verifies only for its
// own binding and room, whatever ran in between.
func TestTickets_ConcurrentUseKeepsEachTicketItsOwn(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	old := newTickets(t, clock, key(2))
	tk := newTickets(t, clock, key(1), key(2))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				binding, room := fmt.Sprintf("s-%d-%d", g, i), fmt.Sprintf("room-%d", g)
				issuer := tk
				if i%2 == 1 {
					issuer = old
				}
				token, _, err := issuer.Issue(room, alice, binding)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := tk.Verify(token, room, binding); err != nil {
					t.Errorf("own ticket refused: %v", err)
				}
				if _, err := tk.Verify(token, room, binding+"x"); !errors.Is(err, rooms.ErrTicketInvalid) {
					t.Errorf("another binding: %v", err)
				}
				if _, err := old.Verify(token, room, binding); (err == nil) != (i%2 == 1) {
					t.Errorf("key %d ticket under the old key alone: %v", 1+i%2, err)
				}
			}
		})
	}
	wg.Wait()
}
