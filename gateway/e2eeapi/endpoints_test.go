package e2eeapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// recordingTransport keeps what a client sent, so that a test can replay it.
type recordingTransport struct {
	e2ee.Transport
	registrations [][]byte
}

func (r *recordingTransport) Register(ctx context.Context, b []byte) ([]byte, error) {
	r.registrations = append(r.registrations, bytes.Clone(b))
	return r.Transport.Register(ctx, b)
}

// validRegistration is a well-formed Registration body (its nonce and proof are not valid for any challenge).
func validRegistration(t testing.TB) []byte {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(nil)
	b, err := (&e2ee.Registration{SigningKey: pub, KeyPackage: bytes.Repeat([]byte{9}, 32), Signature: make([]byte, 64)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errorCode(t testing.TB, b []byte) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &body)
	return body.Error
}

// TestEndpoints_NonMembersGet403BeforeTheAuthority tries every endpoint as every kind of outsider: a caller in
// the waiting room, one presenting a stolen ticket, one with a ticket for another room, a kicked member with
// its old ticket. Each gets 403, and the room's key exchange state does not change.
func TestEndpoints_NonMembersGet403BeforeTheAuthority(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "board"
	alice, eve, mallory, carol, frank := e.user("alice"), e.user("eve"), e.user("mallory"), e.user("carol"), e.user("frank")
	lobby := true
	e.createRoom(room, alice, rooms.SettingsChange{LobbyEnabled: &lobby})
	e.createRoom("other", carol, rooms.SettingsChange{})

	e.admit(alice, room, rooms.RoleHost)
	ca := e.client(alice, room, 0)
	e.run(ca)
	pf := e.admit(frank, room, rooms.RoleParticipant)
	cf := e.client(frank, room, 0)
	e.run(cf)
	e.settle([]*e2ee.Client{ca, cf}, 2)
	if _, err := e.rooms.Remove(e.ctx, room, pf.ID, false); err != nil {
		t.Fatal(err)
	}
	e.settle([]*e2ee.Client{ca}, 1)

	if _, err := e.rooms.Knock(e.ctx, rooms.Admission{Room: room, Subject: rooms.SubjectKey(eve.id.Key()), Name: "Eve", Role: rooms.RoleParticipant}); err != nil {
		t.Fatal(err)
	}
	alice.mu.Lock()
	mallory.tickets[room] = alice.tickets[room] // stolen: bound to alice's session
	alice.mu.Unlock()
	e.admit(carol, "other", rooms.RoleHost)
	carol.tickets[room] = carol.tickets["other"]

	epoch := itoa(ca.Status().Epoch)
	endpoints := []struct {
		method, endpoint, query string
		body                    []byte
	}{
		{"GET", "authority", "", nil},
		{"POST", "nonce", "", nil},
		{"POST", "register", "", validRegistration(t)},
		{"GET", "roster", "since=0", nil},
		{"GET", "roster", "since=" + epoch + "&after=0&wait=1s", nil},
		{"POST", "commits", "epoch=" + epoch, []byte{1, 2, 3}},
		{"POST", "keypackages", "", []byte{1, 2, 3}},
		{"GET", "keypackages", "epoch=" + epoch, nil},
		{"GET", "keys", "epoch=" + epoch, nil},
		{"GET", "wait", "after=0&wait=1s", nil},
	}
	before := e.storeDump()
	for _, caller := range []struct {
		name string
		u    *user
	}{{"waiting room", eve}, {"stolen ticket", mallory}, {"ticket of another room", carol}, {"kicked member", frank}} {
		for _, ep := range endpoints {
			resp, b := e.call(caller.u, ep.method, room, ep.endpoint, ep.query, ep.body)
			if resp.StatusCode != http.StatusForbidden || errorCode(t, b) != "not_member" {
				t.Errorf("%s: %s %s?%s: %d %s", caller.name, ep.method, ep.endpoint, ep.query, resp.StatusCode, b)
			}
		}
	}
	for _, ep := range endpoints {
		if resp, b := e.call(nil, ep.method, room, ep.endpoint, ep.query, ep.body); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous: %s %s: %d %s", ep.method, ep.endpoint, resp.StatusCode, b)
		}
	}
	if !bytes.Equal(before, e.storeDump()) {
		t.Error("outsiders changed the key exchange state")
	}
	var refused int
	for _, en := range e.auditEvents("e2ee.rejected") {
		if en.Str("subject") == "eve-sub" && en.Str("reason") == "not_admitted" {
			refused++
		}
	}
	if refused != 4 { // nonce, register, commits, keypackages (POST)
		t.Errorf("%d refusals of the waiting-room caller audited, want 4", refused)
	}
}

// TestEndpoints_HostileRequestsGetClearErrors sends malformed requests as a member.
func TestEndpoints_HostileRequestsGetClearErrors(t *testing.T) {
	e := newEnv(t, envOptions{maxBundle: 64 << 10})
	const room = "hostile"
	alice, bob := e.user("alice"), e.user("bob")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	e.admit(bob, room, rooms.RoleParticipant)
	rec := &recordingTransport{Transport: e.transport(alice, room)}
	ca, err := e2ee.NewClient(e.ctx, e2ee.ClientOptions{Transport: rec, AuthorityKey: e.api.PublicKey(), Room: room})
	if err != nil {
		t.Fatal(err)
	}
	e.run(ca)
	cb := e.client(bob, room, 0)
	e.run(cb)
	st := e.settle([]*e2ee.Client{ca, cb}, 2)
	epoch := itoa(st.Epoch)

	cases := []struct {
		name                   string
		method, endpoint, q, c string
		body                   []byte
		status                 int
		code                   string
	}{
		{"number with leading zero", "GET", "roster", "since=01", "", nil, 400, "bad_request"},
		{"repeated parameter", "GET", "roster", "since=1&since=2", "", nil, 400, "bad_request"},
		{"unknown parameter", "GET", "roster", "since=0&member=bob", "", nil, 400, "bad_request"},
		{"negative number", "GET", "wait", "after=-1", "", nil, 400, "bad_request"},
		{"missing epoch", "GET", "keys", "", "", nil, 400, "bad_request"},
		{"wait without after", "GET", "roster", "since=0&wait=5s", "", nil, 400, "bad_request"},
		{"bad duration", "GET", "wait", "after=0&wait=forever", "", nil, 400, "bad_request"},
		{"wrong method", "POST", "roster", "", e2eehttp.ContentType, nil, 405, "method_not_allowed"},
		{"wrong method for register", "GET", "register", "", "", nil, 405, "method_not_allowed"},
		{"form post", "POST", "register", "", "application/x-www-form-urlencoded", []byte("a=b"), 415, "unsupported_media_type"},
		{"no content type", "POST", "nonce", "", "-", nil, 415, "unsupported_media_type"},
		{"body on nonce", "POST", "nonce", "", e2eehttp.ContentType, []byte{0}, 400, "bad_request"},
		{"garbage registration", "POST", "register", "", e2eehttp.ContentType, []byte("garbage"), 400, "malformed"},
		{"oversized registration", "POST", "register", "", e2eehttp.ContentType, make([]byte, 9<<10), 413, "body_too_large"},
		{"replayed registration", "POST", "register", "", e2eehttp.ContentType, rec.registrations[0], 403, "nonce"},
		{"garbage commit", "POST", "commits", "epoch=" + epoch, e2eehttp.ContentType, []byte("garbage"), 400, "malformed"},
		{"oversized commit", "POST", "commits", "epoch=" + epoch, e2eehttp.ContentType, make([]byte, 65<<10), 413, "body_too_large"},
		{"garbage key package", "POST", "keypackages", "", e2eehttp.ContentType, []byte("garbage"), 400, "malformed"},
		{"oversized key package", "POST", "keypackages", "", e2eehttp.ContentType, make([]byte, 5<<10), 413, "body_too_large"},
		{"key packages without epoch", "GET", "keypackages", "", "", nil, 400, "bad_request"},
		{"key package post with epoch", "POST", "keypackages", "epoch=1", e2eehttp.ContentType, []byte{1}, 400, "bad_request"},
		{"wrong method for key packages", "PUT", "keypackages", "", "", nil, 405, "method_not_allowed"},
		{"future epoch", "GET", "keys", "epoch=999", "", nil, 404, "unknown_epoch"},
		{"roster beyond head", "GET", "roster", "since=999", "", nil, 404, "unknown_epoch"},
		{"unknown endpoint", "GET", "secrets", "", "", nil, 404, "not_found"},
		{"endpoint below an endpoint", "GET", "roster/x", "", "", nil, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.URL+e2eehttp.APIPath(room)+tc.endpoint+"?"+tc.q, bytes.NewReader(tc.body))
			_ = alice.authorize(room)(req)
			switch tc.c {
			case "":
			case "-":
				req.Header.Del("Content-Type")
			default:
				req.Header.Set("Content-Type", tc.c)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || errorCode(t, body.Bytes()) != tc.code {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body.Bytes(), tc.status, tc.code)
			}
		})
	}
	// The meeting is unharmed.
	exchangeFrames(t, []*e2ee.Client{ca, cb})
}

// TestEndpoints_AuthorityAndWait checks the two endpoints the SDK does not exercise on its own: the authority
// key a client may trust on first use, and the long-poll's answers.
func TestEndpoints_AuthorityAndWait(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "poll"
	alice, bob := e.user("alice"), e.user("bob")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	tr := e.transport(alice, room)
	key, err := tr.AuthorityKey(e.ctx)
	if err != nil || !key.Equal(e.api.PublicKey()) {
		t.Fatalf("authority key %x, %v", key, err)
	}
	ca := e.client(alice, room, 0)
	if _, err := ca.Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing changes: the gateway's wait ends with 204.
	start := time.Now()
	resp, b := e.call(alice, "GET", room, "wait", "after=1000&wait=300ms", nil)
	if resp.StatusCode != http.StatusNoContent || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("idle wait: %d %q after %v", resp.StatusCode, b, time.Since(start))
	}
	// A change wakes the long-poll with the new counter.
	got := make(chan []byte, 1)
	go func() {
		resp, b := e.call(alice, "GET", room, "wait", "after=1&wait=10s", nil)
		if resp.StatusCode != http.StatusOK {
			b = nil
		}
		got <- b
	}()
	time.Sleep(100 * time.Millisecond)
	e.admit(bob, room, rooms.RoleParticipant)
	if _, err := e.client(bob, room, 0).Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if len(b) != 8 || binary.BigEndian.Uint64(b) <= 1 {
			t.Fatalf("woken long-poll answered %x", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll did not wake on a new epoch")
	}
	// The transport's Wait returns the new counter, and gives up when its context ends.
	v, err := tr.Wait(e.ctx, 0)
	if err != nil || v == 0 {
		t.Fatalf("Wait(0) = %d, %v", v, err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := tr.Wait(ctx, v+100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v", err)
	}
}

// TestEndpoints_ClassicKEMOnlyWhereTheRoomAllows registers an X25519 device key in a room whose policy refuses
// classic KEMs and in one that allows them.
func TestEndpoints_ClassicKEMOnlyWhereTheRoomAllows(t *testing.T) {
	for _, allow := range []bool{false, true} {
		e := newEnv(t, envOptions{classic: allow})
		alice := e.user("alice")
		e.createRoom("browsers", alice, rooms.SettingsChange{})
		e.admit(alice, "browsers", rooms.RoleHost)
		_, err := e.client(alice, "browsers", e2ee.KEMX25519).Register(e.ctx)
		var he *e2eehttp.Error
		switch {
		case allow && err != nil:
			t.Errorf("classic KEM refused where allowed: %v", err)
		case !allow && (!errors.Is(err, e2ee.ErrKEMNotAllowed) || !errors.As(err, &he) || he.Status != http.StatusForbidden):
			t.Errorf("classic KEM where refused: %v", err)
		}
		if !allow && !strings.Contains(string(e.logs.Bytes()), "kem_not_allowed") {
			t.Error("the refusal is not logged with its code")
		}
	}
}
