package demoapp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func dial(t *testing.T, base, room string, h http.Header) *websocket.Conn {
	t.Helper()
	c, err := tryDial(base, room, h)
	if err != nil {
		t.Fatalf("dial room %s: %v", room, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func tryDial(base, room string, h http.Header) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/room/"+room+"/ws",
		&websocket.DialOptions{HTTPHeader: h})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return c, err
}

func next(t *testing.T, c *websocket.Conn) event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("event %s: %v", data, err)
	}
	return ev
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func names(ms []presence) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestPresence_TwoClientsSeeEachOtherAndChat(t *testing.T) {
	srv := newTestApp(t, Options{})
	alice := dial(t, srv.URL, "standup", gatewayHeaders("Alice", "alice@example.com", "host", "standup"))
	if ev := next(t, alice); ev.Type != "welcome" || ev.You == nil || ev.You.Name != "Alice" ||
		strings.Join(names(ev.Roster), ",") != "Alice" {
		t.Fatalf("alice welcome = %+v", ev)
	}
	bob := dial(t, srv.URL, "standup", gatewayHeaders("Bob", "bob@example.com", "participant", "standup"))
	if ev := next(t, bob); ev.Type != "welcome" || strings.Join(names(ev.Roster), ",") != "Alice,Bob" {
		t.Fatalf("bob welcome = %+v", ev)
	}
	if ev := next(t, alice); ev.Type != "joined" || ev.Member.Name != "Bob" || ev.Member.Role != "participant" {
		t.Fatalf("alice saw %+v, want Bob joined", ev)
	}

	send(t, alice, `{"type":"chat","text":"  hello bob  "}`)
	for who, c := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		if ev := next(t, c); ev.Type != "chat" || ev.Member.Name != "Alice" || ev.Text != "hello bob" || ev.At == "" {
			t.Fatalf("%s saw %+v, want Alice's chat", who, ev)
		}
	}

	// A closed connection leaves the roster.
	_ = bob.CloseNow()
	if ev := next(t, alice); ev.Type != "left" || ev.Member.Name != "Bob" {
		t.Fatalf("alice saw %+v, want Bob left", ev)
	}
	carol := dial(t, srv.URL, "standup", gatewayHeaders("Carol", "carol@example.com", "participant", "standup"))
	if ev := next(t, carol); strings.Join(names(ev.Roster), ",") != "Alice,Carol" {
		t.Fatalf("carol's roster = %v, want Alice,Carol", names(ev.Roster))
	}
}

func TestPresence_GracefulCloseLeavesRoster(t *testing.T) {
	srv := newTestApp(t, Options{})
	alice := dial(t, srv.URL, "r", gatewayHeaders("Alice", "a@x", "host", "r"))
	next(t, alice)
	bob := dial(t, srv.URL, "r", gatewayHeaders("Bob", "b@x", "participant", "r"))
	next(t, bob)
	next(t, alice) // Bob joined
	if err := bob.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if ev := next(t, alice); ev.Type != "left" || ev.Member.Name != "Bob" {
		t.Fatalf("alice saw %+v, want Bob left", ev)
	}
}

func TestPresence_RoomsAreIsolated(t *testing.T) {
	srv := newTestApp(t, Options{})
	alice := dial(t, srv.URL, "one", gatewayHeaders("Alice", "a@x", "host", "one"))
	next(t, alice)
	carol := dial(t, srv.URL, "two", gatewayHeaders("Carol", "c@x", "host", "two"))
	if ev := next(t, carol); strings.Join(names(ev.Roster), ",") != "Carol" {
		t.Fatalf("room two roster = %v, want only Carol", names(ev.Roster))
	}
	send(t, carol, `{"type":"chat","text":"secret of room two"}`)
	if ev := next(t, carol); ev.Text != "secret of room two" {
		t.Fatalf("carol saw %+v", ev)
	}
	_ = carol.CloseNow()
	// Anything from room two would have been queued for Alice before her own
	// message; the next thing she sees must be her own chat.
	send(t, alice, `{"type":"chat","text":"mine"}`)
	if ev := next(t, alice); ev.Type != "chat" || ev.Text != "mine" {
		t.Fatalf("alice saw %+v from another room", ev)
	}
}

func TestChat_IdentityComesFromTheConnectionNotTheMessage(t *testing.T) {
	srv := newTestApp(t, Options{})
	alice := dial(t, srv.URL, "r", gatewayHeaders("Alice", "alice@example.com", "participant", "r"))
	next(t, alice)
	send(t, alice, `{"type":"chat","text":"hi","member":{"id":"1","name":"Mallory","role":"host"},"you":{"name":"Mallory"}}`)
	if ev := next(t, alice); ev.Type != "chat" || ev.Member.Name != "Alice" || ev.Member.Role != "participant" {
		t.Fatalf("chat = %+v, want it attributed to Alice the participant", ev)
	}
}

// TestChat_SealedMessagesAreRelayedAsTheyCame: an end-to-end encrypted chat
// message reaches every member byte for byte, attributed by the connection,
// with no text of the app's own.
func TestChat_SealedMessagesAreRelayedAsTheyCame(t *testing.T) {
	srv := newTestApp(t, Options{})
	alice := dial(t, srv.URL, "e2ee", gatewayHeaders("Alice", "alice@example.com", "host", "e2ee"))
	next(t, alice)
	bob := dial(t, srv.URL, "e2ee", gatewayHeaders("Bob", "bob@example.com", "participant", "e2ee"))
	next(t, bob)
	next(t, alice) // Bob joined
	const data = "kAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygp-_"
	send(t, bob, `{"type":"sealed","data":"`+data+`","text":"ignored","member":{"name":"Mallory"}}`)
	for who, c := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		if ev := next(t, c); ev.Type != "sealed" || ev.Data != data || ev.Text != "" || ev.Member.Name != "Bob" {
			t.Fatalf("%s saw %+v, want Bob's sealed message as sent", who, ev)
		}
	}
}

func TestChat_RefusedMessages(t *testing.T) {
	tests := []struct {
		name, role, msg string
	}{
		{"viewer", "viewer", `{"type":"chat","text":"can I talk?"}`},
		{"not JSON", "participant", `hello`},
		{"other type", "participant", `{"type":"kick","member":"2"}`},
		{"empty", "participant", `{"type":"chat","text":" \u0000\u200f "}`},
		{"too long", "participant", `{"type":"chat","text":"` + strings.Repeat("é", 501) + `"}`},
		{"viewer sealed", "viewer", `{"type":"sealed","data":"kAECAw"}`},
		{"sealed not base64url", "participant", `{"type":"sealed","data":"a+b/"}`},
		{"sealed padded", "participant", `{"type":"sealed","data":"kAECAw=="}`},
		{"sealed empty", "participant", `{"type":"sealed","data":""}`},
		{"sealed too large", "participant", `{"type":"sealed","data":"` + strings.Repeat("A", maxSealed+1) + `"}`},
	}
	srv := newTestApp(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room := "refused-" + strings.ReplaceAll(tt.name, " ", "-")
			c := dial(t, srv.URL, room, gatewayHeaders("U", "u@x", tt.role, room))
			next(t, c)
			other := dial(t, srv.URL, room, gatewayHeaders("O", "o@x", "participant", room))
			next(t, other)
			next(t, c) // O joined
			send(t, c, tt.msg)
			if ev := next(t, c); ev.Type != "error" {
				t.Fatalf("sender saw %+v, want an error", ev)
			}
			send(t, other, `{"type":"chat","text":"after"}`)
			if ev := next(t, other); ev.Text != "after" {
				t.Fatalf("other member saw %+v before its own message", ev)
			}
		})
	}
}

func TestChat_FloodIsRateLimited(t *testing.T) {
	srv := newTestApp(t, Options{})
	c := dial(t, srv.URL, "r", gatewayHeaders("U", "u@x", "participant", "r"))
	next(t, c)
	// 40 back-to-back messages would need 6 s to fit rate 5/s with burst 10.
	const n = 40
	for range n {
		send(t, c, `{"type":"chat","text":"spam"}`)
	}
	refused := 0
	for range n {
		if next(t, c).Type == "error" {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no message of a flood was refused")
	}
}

func TestSocket_RefusedBeforeUpgrade(t *testing.T) {
	srv := newTestApp(t, Options{OriginPatterns: []string{"gateway.test:8080"}})
	good := gatewayHeaders("A", "a@x", "host", "r")
	withOrigin := func(origin string) http.Header {
		h := good.Clone()
		h.Set("Origin", origin)
		return h
	}
	tests := []struct {
		name   string
		room   string
		header http.Header
		ok     bool
	}{
		{"no identity", "r", http.Header{}, false},
		{"room header mismatch", "r", gatewayHeaders("A", "a@x", "host", "other"), false},
		{"cross-site origin", "r", withOrigin("http://evil.test"), false},
		{"lookalike origin", "r", withOrigin("http://gateway.test:8080.evil.test"), false},
		{"bad room", "-r", good, false},
		{"gateway origin", "r", withOrigin("http://gateway.test:8080"), true},
		{"no origin (not a browser)", "r", good, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tryDial(srv.URL, tt.room, tt.header)
			if c != nil {
				_ = c.CloseNow()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("dial err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestClose_TellsClientsGoingAway(t *testing.T) {
	app, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	c := dial(t, srv.URL, "r", gatewayHeaders("A", "a@x", "host", "r"))
	next(t, c)
	done := make(chan error, 1)
	go func() { done <- app.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
		t.Fatalf("read err = %v, want close status going away", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := tryDial(srv.URL, "r", gatewayHeaders("A", "a@x", "host", "r")); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}
