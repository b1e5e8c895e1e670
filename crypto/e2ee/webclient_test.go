package e2ee

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	pathpkg "path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
)

// The TypeScript client (web/src/e2ee) as the victim of the evil gateway: the same deviations
// evilgateway_test.go tries against the Go client, through the real Authority and an evilTransport served
// over HTTP on 127.0.0.1, must each raise the same alarm in the web client (run under Node by
// web/testlib/victim.mjs).

// webReply is one answer of victim.mjs.
type webReply struct {
	OK           bool     `json:"ok"`
	Kind         string   `json:"kind"`
	Alarm        bool     `json:"alarm"`
	Member       string   `json:"member"`
	Message      string   `json:"message"`
	State        string   `json:"state"`
	Epoch        uint64   `json:"epoch"`
	Generation   uint8    `json:"generation"`
	Code         string   `json:"code"`
	Unconfirmed  []string `json:"unconfirmed"`
	EncryptError string   `json:"encrypt_error"`
	Credential   string   `json:"credential"`
	Device       string   `json:"device"`
}

// webParty is the web client in a meeting: its session is a LocalTransport (one identity), possibly
// wrapped by the evil gateway, served over HTTP.
type webParty struct {
	m     *meeting
	local *LocalTransport
	evil  *evilTransport
	in    io.Writer
	out   *bufio.Scanner
	cred  *Credential
}

// serveTransport exposes tr as the e2ee endpoints of docs/e2ee.md section 11 (the paths' last element names
// the endpoint), with the Authority's errors mapped by e2eehttp.ErrorStatus as gateway/e2eeapi does
// (httpErrorStatus: this package cannot import e2eehttp, which imports it, so the external test file
// e2eehttp_hook_test.go hands it in).
// httpErrorStatus is e2eehttp.ErrorStatus, set by e2eehttp_hook_test.go.
var httpErrorStatus func(error) (int, string)

// SetHTTPErrorStatus lets the external test package hand in e2eehttp.ErrorStatus.
func SetHTTPErrorStatus(f func(error) (int, string)) { httpErrorStatus = f }

func serveTransport(t *testing.T, tr Transport) string {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		num := func(k string) uint64 { v, _ := strconv.ParseUint(r.URL.Query().Get(k), 10, 64); return v }
		var out []byte
		var err error
		switch ep := pathpkg.Base(r.URL.Path); {
		case ep == "nonce":
			out, err = tr.Challenge(ctx)
		case ep == "register":
			out, err = tr.Register(ctx, body)
		case ep == "roster":
			out, err = tr.Roster(ctx, num("since"))
		case ep == "keypackages" && r.Method == http.MethodPost:
			err = tr.PostKeyPackage(ctx, body)
		case ep == "keypackages":
			out, err = tr.KeyPackages(ctx, num("epoch"))
		case ep == "commits":
			err = tr.PostCommit(ctx, num("epoch"), body)
		case ep == "keys":
			out, err = tr.SealedKeys(ctx, num("epoch"))
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			status, code := httpErrorStatus(err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": err.Error()})
			return
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(out)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// webClientDir is the npm project; the test skips when Node or the installed dependencies are missing.
func webClientDir(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the web client's tests need Node 20 (web/)")
	}
	dir, err = filepath.Abs(filepath.Join("..", "..", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "esbuild")); err != nil {
		t.Skip("web/node_modules is missing: run `npm ci` in web/ first")
	}
	return node, dir
}

// webJoin starts the web client for identity id on authority a; wrap, when set, is the evil gateway's view.
// It does not register.
func (m *meeting) webClient(t *testing.T, a *Authority, id Identity, expect Identity, evil bool) *webParty {
	t.Helper()
	node, dir := webClientDir(t)
	p := &webParty{m: m, local: NewLocalTransport(a, id, id.Subject, RoleParticipant)}
	var tr Transport = p.local
	if evil {
		p.evil = &evilTransport{LocalTransport: p.local}
		tr = p.evil
	}
	url := serveTransport(t, tr)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join("testlib", "victim.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MG_GATEWAY="+url, "MG_ROOM="+a.Room(), "MG_AUTHORITY="+hex.EncodeToString(m.authKey.Public().(ed25519.PublicKey)),
		"MG_EXPECT_SUB="+expect.Subject, "MG_EXPECT_ISS="+expect.Issuer)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("web client stderr:\n%s", stderr.String())
		}
	})
	p.in, p.out = in, bufio.NewScanner(out)
	p.out.Buffer(make([]byte, 1<<20), 1<<20)
	return p
}

func (p *webParty) do(t *testing.T, cmd, arg string) webReply {
	t.Helper()
	line, _ := json.Marshal(map[string]any{"cmd": cmd, "arg": arg, "now": p.m.clock.Now().UnixMilli()})
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	if !p.out.Scan() {
		t.Fatalf("web client ended: %v", p.out.Err())
	}
	var r webReply
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		t.Fatalf("web client wrote %q: %v", p.out.Text(), err)
	}
	return r
}

// register registers the web client and returns its credential as the Authority stored it.
func (p *webParty) register(t *testing.T) {
	t.Helper()
	if r := p.do(t, "register", ""); !r.OK {
		t.Fatalf("web client: register: %s", r.Message)
	}
	h := p.local.Credential()
	p.cred = must[*Credential](t)(p.m.authority.credential(p.m.ctx, h))
}

func (p *webParty) sync(t *testing.T) webReply {
	t.Helper()
	return p.do(t, "sync", "")
}

// requireWebAlarm checks the reply is the alarm kind naming member (zero: any), and that the web client is
// halted for good with no key left.
func requireWebAlarm(t *testing.T, p *webParty, r webReply, kind string, member Hash) {
	t.Helper()
	if r.OK || !r.Alarm || r.Kind != kind {
		t.Fatalf("web client: %+v, want alarm %s", r, kind)
	}
	if !member.IsZero() && r.Member != member.String() {
		t.Fatalf("web client's alarm names %s, want %s", r.Member, member)
	}
	if r.State != "halted" || r.EncryptError != "halted" || r.Code != "" {
		t.Fatalf("web client after the alarm: state %s, encryption key error %q, code %q", r.State, r.EncryptError, r.Code)
	}
	if again := p.sync(t); again.OK || again.Kind != "halted" {
		t.Fatalf("web client syncs after the alarm: %+v", again)
	}
}

// webSettle syncs the Go parties and the web client until all hold the head's epoch secret, and checks the
// web client shows the Go clients' security code.
func webSettle(t *testing.T, w *webParty, parties ...*party) webReply {
	t.Helper()
	for round := 0; round < 8; round++ {
		for _, p := range parties {
			if _, err := p.client.Sync(context.Background()); err != nil {
				t.Fatalf("%s: sync round %d: %v", p.name, round, err)
			}
		}
		r := w.sync(t)
		if !r.OK {
			t.Fatalf("web client: sync round %d: %s", round, r.Message)
		}
		if settled(parties) {
			st := parties[0].client.Status()
			if r.State == "member" && r.Epoch == st.Epoch && r.Code == st.SecurityCode {
				return r
			}
		}
		if round == 3 {
			w.m.clock.Advance(3 * time.Second)
		}
	}
	t.Fatal("the web client and the Go clients did not settle")
	return webReply{}
}

// webEvilRoom is the web client and two Go clients settled at one epoch; the gateway controls the web
// client's view.
type webEvilRoom struct {
	m          *meeting
	web        *webParty
	bob, carol *party
	head       *Roster
}

func newWebEvilRoom(t *testing.T) *webEvilRoom {
	m := newMeeting(t, nil)
	alice := Identity{Issuer: "https://idp.example", Subject: "alice"}
	w := m.webClient(t, m.authority, alice, alice, true)
	w.register(t)
	must[*Roster](t)(m.authority.Admit(m.ctx, w.cred.Hash()))
	e := &webEvilRoom{m: m, web: w, bob: m.join("bob"), carol: m.join("carol")}
	webSettle(t, w, e.bob, e.carol)
	e.head = m.authority.Head()
	return e
}

// syncPastCommitTimeout lets the web client see the head, waits out the commit timeout and syncs again, so
// it commits whoever was designated.
func (e *webEvilRoom) syncPastCommitTimeout(t *testing.T) webReply {
	if r := e.web.sync(t); !r.OK {
		return r
	}
	e.m.clock.Advance(3 * time.Second)
	return e.web.sync(t)
}

func replaceKeyPackage(t *testing.T, of ed25519.PublicKey, forge func() *KeyPackage) func(uint64, []byte) []byte {
	return func(_ uint64, honest []byte) []byte {
		var items [][]byte
		for _, kp := range must[[]*KeyPackage](t)(parseKeyPackages(honest)) {
			if kp.SigningKey.Equal(of) {
				kp = forge()
			}
			items = append(items, kp.raw)
		}
		return must[[]byte](t)(marshalKeyPackages(items))
	}
}

func TestWebClient_EvilGatewayDeviationsAreRefused(t *testing.T) {
	ghostID := Identity{Issuer: "https://idp.example", Subject: "ghost"}
	_, attacker, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name   string
		attack func(t *testing.T, e *webEvilRoom) (webReply, Hash)
		want   string
	}{
		// Key substitution: the gateway's KEM key in a key package under a member's identity and signing key.
		{"gateway KEM key under a member's identity and signing key", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			dave := e.m.join("dave")
			e.web.evil.keyPackages = replaceKeyPackage(t, dave.cred.SigningKey, func() *KeyPackage {
				return forgeKeyPackage(t, attacker, e.head.Room, e.head.Instance, dave.cred.Identity, dave.cred.SigningKey)
			})
			return e.syncPastCommitTimeout(t), dave.cred.Hash()
		}, "bad_signature"},
		{"gateway device's key package for a member", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			dave := e.m.join("dave")
			e.web.evil.keyPackages = replaceKeyPackage(t, dave.cred.SigningKey, func() *KeyPackage {
				return forgeKeyPackage(t, attacker, e.head.Room, e.head.Instance, dave.cred.Identity, attacker.Public().(ed25519.PublicKey))
			})
			return e.syncPastCommitTimeout(t), dave.cred.Hash()
		}, "bad_signature"},
		{"member's superseded key package served again", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			var replay bool
			e.web.evil.keyPackages = replayFirstKeyPackage(t, e.bob.cred.SigningKey, &replay)
			for range 2 { // the web client seals to bob's key package, bob opens it and publishes a fresh one; twice
				must[*Roster](t)(e.m.authority.Rekey(e.m.ctx))
				if r := e.syncPastCommitTimeout(t); !r.OK || r.Code == "" {
					t.Fatalf("the web client did not commit: %+v", r)
				}
				e.m.clock.Advance(2 * time.Second)
				webSettle(t, e.web, e.bob, e.carol)
			}
			replay = true
			must[*Roster](t)(e.m.authority.Rekey(e.m.ctx))
			return e.syncPastCommitTimeout(t), e.bob.cred.Hash()
		}, "stale_key_package"},
		{"ghost credential signed by another key", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			ghost, _ := forgeCredential(t, attacker, e.head.Room, e.head.Instance, ghostID, nil)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, ghost.Hash()), false)))
			e.web.evil.roster = serve(updateBytes(t, []*Roster{r}, ghost))
			return e.web.sync(t), ghost.Hash()
		}, "bad_signature"},
		{"roster not signed by the authority key", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			r := must[*Roster](t)(issueRoster(attacker, nextRoster(e.head, e.head.Members, false)))
			e.web.evil.roster = serve(updateBytes(t, []*Roster{r}))
			return e.web.sync(t), Hash{}
		}, "bad_signature"},
		{"epoch that does not extend the client's head (fork)", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			other := nextRoster(e.head, e.head.Members, false)
			other.Prev = Hash{0xf0, 0x4c}
			r := must[*Roster](t)(issueRoster(e.m.authKey, other))
			e.web.evil.roster = serve(updateBytes(t, []*Roster{r}))
			return e.web.sync(t), Hash{}
		}, "fork"},
		{"skipped epoch", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			must[*Roster](t)(e.m.authority.Rekey(e.m.ctx))
			must[*Roster](t)(e.m.authority.Rekey(e.m.ctx))
			e.web.evil.roster = func(_ uint64, honest []byte) []byte {
				u := must[*rosterUpdate](t)(parseRosterUpdate(honest))
				u.rosters = u.rosters[1:]
				return must[[]byte](t)(u.marshal())
			}
			return e.web.sync(t), Hash{}
		}, "gap"},
		{"ghost added to a locked room", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			locked := must[*Roster](t)(e.m.authority.SetLocked(e.m.ctx, true))
			webSettle(t, e.web, e.bob, e.carol)
			ghost, _ := forgeCredential(t, e.m.authKey, e.head.Room, e.head.Instance, ghostID, nil)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(locked, with(locked.Members, ghost.Hash()), true)))
			e.web.evil.roster = serve(updateBytes(t, []*Roster{r}, ghost))
			return e.web.sync(t), ghost.Hash()
		}, "locked_roster"},
		// Multi-device: a second entry with the web client's own device key, under another subject.
		{"second entry with this device's key", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			clone, _ := forgeCredential(t, e.m.authKey, e.head.Room, e.head.Instance, ghostID, e.web.cred.SigningKey)
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, with(e.head.Members, clone.Hash()), false)))
			e.web.evil.roster = serve(updateBytes(t, []*Roster{r}, clone))
			return e.web.sync(t), clone.Hash()
		}, "clone"},
		{"this device replaced by a gateway device in one epoch", func(t *testing.T, e *webEvilRoom) (webReply, Hash) {
			prime, _ := forgeCredential(t, e.m.authKey, e.head.Room, e.head.Instance, e.web.cred.Identity, nil)
			members := slices.DeleteFunc(with(e.head.Members, prime.Hash()), func(h Hash) bool { return h == e.web.cred.Hash() })
			r := must[*Roster](t)(issueRoster(e.m.authKey, nextRoster(e.head, members, false)))
			e.web.evil.roster = serve(updateBytes(t, []*Roster{r}, prime))
			return e.web.sync(t), prime.Hash()
		}, "impersonation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newWebEvilRoom(t)
			r, member := tc.attack(t, e)
			requireWebAlarm(t, e.web, r, tc.want, member)
		})
	}
}

func TestWebClient_EvilGatewayIdentityAndDevices(t *testing.T) {
	alice := Identity{Issuer: "https://idp.example", Subject: "alice"}
	t.Run("real alice registered under another subject", func(t *testing.T) {
		m := newMeeting(t, nil)
		w := m.webClient(t, m.authority, Identity{Issuer: "https://idp.example", Subject: "alice.2"}, alice, false)
		r := w.do(t, "register", "")
		requireWebAlarm(t, w, r, "identity_mismatch", Hash{})
		if w.local.Credential() != (Hash{}) {
			t.Fatal("the web client registered a key for another identity")
		}
	})
	t.Run("credential certifies another identity than the challenge", func(t *testing.T) {
		m := newMeeting(t, nil)
		w := m.webClient(t, m.authority, alice, Identity{}, true)
		w.evil.register = func(honest []byte) []byte {
			c := must[*Credential](t)(ParseCredential(honest))
			swapped := *c
			swapped.Identity.Subject = "mallory"
			return must[*Credential](t)(issueCredential(m.authKey, &swapped)).raw
		}
		requireWebAlarm(t, w, w.do(t, "register", ""), "identity_mismatch", Hash{})
	})
	t.Run("device of alice's identity present before her is confirmed or rejected", func(t *testing.T) {
		m := newMeeting(t, nil)
		bob := m.join("bob")
		impostor := m.registerAs(m.authority, "impostor", alice)
		must[*Roster](t)(m.authority.Admit(m.ctx, impostor.cred.Hash()))
		w := m.webClient(t, m.authority, alice, alice, false)
		w.register(t)
		must[*Roster](t)(m.authority.Admit(m.ctx, w.cred.Hash()))
		r := webSettle(t, w, bob, impostor)
		if len(r.Unconfirmed) != 1 || r.Unconfirmed[0] != impostor.cred.Fingerprint() {
			t.Fatalf("web client's unconfirmed devices: %v", r.Unconfirmed)
		}
		requireWebAlarm(t, w, w.do(t, "reject", impostor.cred.Fingerprint()), "impersonation", impostor.cred.Hash())
	})
	t.Run("another device of alice's joining while she is present is reported, not an alarm", func(t *testing.T) {
		m := newMeeting(t, nil)
		bob := m.join("bob")
		w := m.webClient(t, m.authority, alice, alice, false)
		w.register(t)
		must[*Roster](t)(m.authority.Admit(m.ctx, w.cred.Hash()))
		webSettle(t, w, bob)
		phone := m.registerAs(m.authority, "phone", alice)
		must[*Roster](t)(m.authority.Admit(m.ctx, phone.cred.Hash()))
		if r := webSettle(t, w, bob, phone); len(r.Unconfirmed) != 0 {
			t.Fatalf("a device added while the web client was present is unconfirmed: %v", r.Unconfirmed)
		}
	})
}

// TestWebClient_EvilGatewayForkAndCode: the gateway forks the roster between the web client's view and the Go
// clients'. Nothing is wrong inside either view, yet the codes differ (the gateway cannot steer the code: it
// comes from an epoch secret it does not hold), and the first commit relayed across views is refused.
func TestWebClient_EvilGatewayForkAndCode(t *testing.T) {
	ctx := context.Background()
	e := newWebEvilRoom(t)
	m := e.m
	code := e.web.do(t, "status", "").Code

	t.Run("the gateway's data does not yield the code", func(t *testing.T) {
		var public [][]byte
		for _, it := range must[[]e2eestore.Entry](t)(m.store.List(ctx, "")) {
			public = append(public, it.Value)
		}
		public = append(public, m.authority.PublicKey(), e.head.raw)
		for _, v := range public {
			for i := 0; i+32 <= len(v); i++ {
				w := [32]byte(v[i : i+32])
				if SecurityCode(w) == code || v1SecurityCode(w) == code {
					t.Fatalf("the gateway's own data yields the web client's security code (offset %d)", i)
				}
			}
		}
	})

	storeB := e2eestore.NewMemory(m.clock)
	for _, en := range must[[]e2eestore.Entry](t)(m.store.List(ctx, "")) {
		if err := storeB.Put(ctx, en.Key, en.Value, 0); err != nil {
			t.Fatal(err)
		}
	}
	viewA := m.authority
	viewB := must[*Authority](t)(NewAuthority(ctx, AuthorityOptions{Room: viewA.Room(), Instance: viewA.Instance(), SigningKey: m.authKey, Store: storeB, Clock: m.clock}))
	webInB := NewLocalTransport(viewB, e.web.cred.Identity, "alice", RoleParticipant)
	webInB.cred = e.web.cred.Hash()
	e.web.evil.LocalTransport = webInB

	ghost := m.register(viewA, "ghost")
	must[*Roster](t)(viewA.Admit(ctx, ghost.cred.Hash()))
	must[*Roster](t)(viewB.Rekey(ctx))
	settle(t, e.bob, e.carol, ghost)
	var r webReply
	for range 2 {
		m.clock.Advance(3 * time.Second)
		if r = e.web.sync(t); !r.OK {
			t.Fatalf("web client in its view: %+v", r)
		}
	}
	b := e.bob.client.Status()
	if r.Epoch != b.Epoch || r.Code == "" || b.SecurityCode == "" || r.Code == b.SecurityCode {
		t.Fatalf("forked views at epochs %d/%d show codes %q and %q", r.Epoch, b.Epoch, r.Code, b.SecurityCode)
	}
	e.web.evil.sealed = func(epoch uint64, _ []byte) []byte {
		return must[[]byte](t)(viewA.SealedFor(ctx, e.web.cred.Hash(), epoch))
	}
	requireWebAlarm(t, e.web, e.web.sync(t), "fork", Hash{})
}

// TestWebClient_HonestGatewayRaisesNothing: the rotations the attacks ride on, done honestly.
func TestWebClient_HonestGatewayRaisesNothing(t *testing.T) {
	e := newWebEvilRoom(t)
	must[*Roster](t)(e.m.authority.SetLocked(e.m.ctx, true))
	must[*Roster](t)(e.m.authority.Rekey(e.m.ctx))
	must[*Roster](t)(e.m.authority.Remove(e.m.ctx, e.carol.cred.Hash()))
	e.m.clock.Advance(5 * time.Minute)
	r := webSettle(t, e.web, e.bob)
	if r.Generation == 0 && r.Epoch == e.head.Epoch {
		t.Fatalf("no new epoch: %+v", r)
	}
	if err := syncErr(e.carol); !errors.Is(err, ErrRemoved) {
		t.Fatalf("carol: %v", err)
	}
}
