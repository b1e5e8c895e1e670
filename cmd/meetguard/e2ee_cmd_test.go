package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/devidp"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/syncbuf"
)

// e2eeGateway is a running gateway with the development provider, the rooms memory store, tickets and the e2ee
// API, on 127.0.0.1.
type e2eeGateway struct {
	base    string
	authn   *auth.Authenticator
	rooms   rooms.Store
	tickets *rooms.Tickets
	api     *e2eeapi.Handler
}

func startE2EEGateway(t *testing.T) *e2eeGateway {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // trust-on-first-use pins go here, not to the user's config
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &e2eeGateway{base: "http://" + ln.Addr().String()}
	idp, err := devidp.New(devidp.Options{
		Issuer:  g.base + devIdPPrefix,
		Clients: []devidp.Client{{ID: "meetguard-test", Secret: "test-secret", RedirectURIs: []string{g.base + auth.CallbackPath}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Listen: ln.Addr().String(), PublicURL: g.base,
		OIDC:      config.OIDC{Issuer: idp.Issuer(), ClientID: "meetguard-test", ClientSecret: "test-secret", KeyRefetchInterval: time.Hour},
		Session:   config.Session{Secret: strings.Repeat("s", 32), TTL: time.Hour},
		Upstreams: []config.Upstream{{Name: "demo", URL: "http://127.0.0.1:9"}},
		Audit:     config.Audit{Path: filepath.Join(t.TempDir(), "audit.log")},
		Rooms:     config.Rooms{TicketKey: strings.Repeat("\x01", 32), TicketTTL: time.Hour},
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Deps{
		Listener: ln, Mount: map[string]http.Handler{devIdPPrefix + "/": idp},
		HTTPClient: &http.Client{Timeout: 5 * time.Second}, StrictAudit: true, AuditSync: audit.SyncAsync,
		Admitter: e2eeTestAdmitter{},
		E2EE: func(a *app.App, o *e2eeapi.Options) {
			o.Membership = e2eeapi.TicketMembership{Store: a.Rooms, Tickets: a.Tickets}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.authn, g.rooms, g.tickets, g.api = a.Auth, a.Rooms, a.Tickets, a.E2EE
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-served; _ = a.Close(context.Background()) })
	waitReady(t, g.base)
	return g
}

type e2eeTestAdmitter struct{}

func (e2eeTestAdmitter) AdmitRequest(context.Context, admission.Request) (admission.Result, error) {
	return admission.Result{Outcome: admission.Denied}, nil
}

// join admits user to room in the rooms store and returns its token and room ticket.
func (g *e2eeGateway) join(t *testing.T, user, room string, role rooms.Role) (token, ticket string) {
	t.Helper()
	token = devToken(t, g.base, user)
	id, err := g.authn.VerifyBearer(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.rooms.Admit(context.Background(), rooms.Admission{Room: room, Subject: rooms.SubjectKey(id.Key()), Name: user, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	ticket, _, err = g.tickets.Issue(room, p, id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return token, ticket
}

var securityCodeLine = regexp.MustCompile(`(?m)^security code: ((?:\d{5} ){7}\d{5})$`)

// TestE2EEJoin_PrintsTheSecurityCodeOtherMembersSee runs `meetguard e2ee join` against a running gateway beside
// an SDK client, until both hold each other's keys; the code it printed last is the one the other member sees.
func TestE2EEJoin_PrintsTheSecurityCodeOtherMembersSee(t *testing.T) {
	g := startE2EEGateway(t)
	const room = "cli-room"
	if _, err := g.rooms.Put(context.Background(), room, "nobody|owner", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	aliceToken, aliceTicket := g.join(t, "alice@example.com", room, rooms.RoleHost)
	bobToken, bobTicket := g.join(t, "bob@example.com", room, rooms.RoleParticipant)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(aliceToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"e2ee", "join", "--room", room, "--gateway", g.base, "--token-file", tokenFile, "--ticket", aliceTicket}, &stdout, &stderr)
	}()

	tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: g.base, Room: room, Authorize: func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+bobToken)
		r.Header.Set(e2eeapi.TicketHeader, bobTicket)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e2ee.NewClient(ctx, e2ee.ClientOptions{Transport: tr, AuthorityKey: g.api.PublicKey(), Room: room})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bob.Run(ctx, nil) }()
	for {
		st := bob.Status()
		if st.State == e2ee.StateMember && len(st.Members) == 2 && st.SecurityCode != "" {
			break
		}
		select {
		case code := <-exit:
			t.Fatalf("e2ee join exited with %d:\n%s\n%s", code, stdout.String(), stderr.String())
		case <-ctx.Done():
			t.Fatalf("bob never held the command's key; command output:\n%s\n%s", stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	want := bob.Status().SecurityCode
	// The command prints the epoch as soon as it verified it; give it the moment to do so.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stdout.String(), "security code: "+want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-exit; code != e2eeExitOK {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	codes := securityCodeLine.FindAllStringSubmatch(out, -1)
	if len(codes) == 0 || codes[len(codes)-1][1] != want {
		t.Fatalf("the command's last security code is not bob's %q:\n%s", want, out)
	}
	for _, s := range []string{"registered X-Wing as \"Alice", ", host)", "epoch ", "(this device)", "trusted on first use and pinned", "stopped"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, aliceToken) || strings.Contains(stderr.String(), aliceToken) {
		t.Error("the command printed its token")
	}
}

// TestE2EEJoin_WrongPinnedAuthorityKeyIsAnAlarm: a gateway whose credentials are not signed by the pinned key
// is refused with the alarm exit code.
func TestE2EEJoin_WrongPinnedAuthorityKeyIsAnAlarm(t *testing.T) {
	g := startE2EEGateway(t)
	const room = "pinned"
	if _, err := g.rooms.Put(context.Background(), room, "nobody|owner", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	token, ticket := g.join(t, "alice@example.com", room, rooms.RoleHost)
	other, _, _ := ed25519.GenerateKey(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	code := run(ctx, []string{"e2ee", "join", "--room", room, "--gateway", g.base, "--token", token, "--ticket", ticket,
		"--authority-key", hex.EncodeToString(other)}, &stdout, &stderr)
	if code != e2eeExitAlarm || !strings.Contains(stderr.String(), "ALARM") {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
}

// TestE2EEJoin_TrustOnFirstUseAlarmsOnAChangedKey: the key a gateway served on the first run is pinned under the
// user's config directory; a gateway serving another one later is an alarm.
func TestE2EEJoin_TrustOnFirstUseAlarmsOnAChangedKey(t *testing.T) {
	g := startE2EEGateway(t)
	const room = "tofu"
	if _, err := g.rooms.Put(context.Background(), room, "nobody|owner", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	token, ticket := g.join(t, "alice@example.com", room, rooms.RoleHost)
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := trustOnFirstUse(g.base, room, other); err != nil { // an earlier run met another key
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	code := run(ctx, []string{"e2ee", "join", "--room", room, "--gateway", g.base, "--token", token, "--ticket", ticket}, &stdout, &stderr)
	if code != e2eeExitAlarm || !strings.Contains(stderr.String(), "authority key changed") {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if got, err := trustOnFirstUse(g.base, room, g.api.PublicKey()); err == nil {
		t.Fatalf("the changed key replaced the pin: %s", got)
	}
}

// TestE2EEJoin_ExpectIdentityRefusesAnotherIdentity is item 2 for the headless client: a gateway that would
// certify the device for someone else than --expect-identity is an alarm before any key is registered.
func TestE2EEJoin_ExpectIdentityRefusesAnotherIdentity(t *testing.T) {
	g := startE2EEGateway(t)
	const room = "expect"
	if _, err := g.rooms.Put(context.Background(), room, "nobody|owner", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	token, ticket := g.join(t, "alice@example.com", room, rooms.RoleHost)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	code := run(ctx, []string{"e2ee", "join", "--room", room, "--gateway", g.base, "--token", token, "--ticket", ticket,
		"--expect-identity", "bob@example.com"}, &stdout, &stderr)
	if code != e2eeExitAlarm || !strings.Contains(stderr.String(), "identity is not the expected one") {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "registered ") {
		t.Fatal("a key was registered for the wrong identity")
	}
}

func TestE2EEJoin_UsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"e2ee"}, "usage"},
		{"unknown command", []string{"e2ee", "leave"}, "unknown command"},
		{"no room", []string{"e2ee", "join", "--gateway", "https://m.example", "--token", "t"}, "--room is required"},
		{"no gateway", []string{"e2ee", "join", "--room", "r", "--token", "t"}, "--gateway is required"},
		{"no token", []string{"e2ee", "join", "--room", "r", "--gateway", "https://m.example"}, "exactly one of --token"},
		{"two tokens", []string{"e2ee", "join", "--room", "r", "--gateway", "https://m.example", "--token", "t", "--token-file", "f"}, "exactly one of --token"},
		{"two tickets", []string{"e2ee", "join", "--room", "r", "--gateway", "https://m.example", "--token", "t", "--ticket", "a", "--ticket-file", "f"}, "at most one of --ticket"},
		{"bad key", []string{"e2ee", "join", "--room", "r", "--gateway", "https://m.example", "--token", "t", "--authority-key", "abcd"}, "--authority-key"},
		{"issuer without subject", []string{"e2ee", "join", "--room", "r", "--gateway", "https://m.example", "--token", "t", "--expect-issuer", "https://idp"}, "--expect-issuer needs"},
		{"stray argument", []string{"e2ee", "join", "--room", "r", "--gateway", "https://m.example", "--token", "t", "extra"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		var stdout, stderr syncbuf.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != e2eeExitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, stderr.String())
		}
	}
	// Plain http off loopback is refused before any token is sent.
	var stdout, stderr syncbuf.Buffer
	if code := run(context.Background(), []string{"e2ee", "join", "--room", "r", "--gateway", "http://meet.example.com", "--token", "t"}, &stdout, &stderr); code != e2eeExitError || !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("plain http: exit %d, stderr %q", code, stderr.String())
	}
}

func TestParseAuthorityKey_HexAndBase64(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	for _, s := range []string{hex.EncodeToString(pub), " " + hex.EncodeToString(pub) + "\n",
		"" + strings.TrimRight(encodeStd(pub), "="), encodeStd(pub)} {
		k, err := parseAuthorityKey(s)
		if err != nil || !k.Equal(pub) {
			t.Errorf("%q: %x, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "zz", hex.EncodeToString(pub[:31]), hex.EncodeToString(append(pub, 0))} {
		if _, err := parseAuthorityKey(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestE2EEJoin_StopsWhenKicked: once the gateway stops serving the member, the command says so and exits 1
// instead of retrying forever.
func TestE2EEJoin_StopsWhenKicked(t *testing.T) {
	g := startE2EEGateway(t)
	const room = "kick"
	if _, err := g.rooms.Put(context.Background(), room, "nobody|owner", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	token, ticket := g.join(t, "alice@example.com", room, rooms.RoleParticipant)
	ticketFile := filepath.Join(t.TempDir(), "ticket")
	if err := os.WriteFile(ticketFile, []byte(ticket), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"e2ee", "join", "--room", room, "--gateway", g.base, "--token", token, "--ticket-file", ticketFile}, &stdout, &stderr)
	}()
	for !securityCodeLine.MatchString(stdout.String()) {
		select {
		case code := <-exit:
			t.Fatalf("exit %d before joining:\n%s\n%s", code, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	r, err := g.rooms.Room(ctx, room)
	if err != nil || len(r.Participants) != 1 {
		t.Fatalf("room: %+v, %v", r, err)
	}
	if _, err := g.rooms.Remove(ctx, room, r.Participants[0].ID, false); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != e2eeExitError || !strings.Contains(stderr.String(), "no longer serves") {
			t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("the command kept running after the kick:\n%s\n%s", stdout.String(), stderr.String())
	}
}
