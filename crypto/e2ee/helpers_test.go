package e2ee

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"go.uber.org/zap"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// meeting is a room served by an honest Authority, with helpers that play the gateway's room logic.
type meeting struct {
	t         testing.TB
	ctx       context.Context
	clock     *fakeClock
	authKey   ed25519.PrivateKey
	store     *e2eestore.Memory
	authority *Authority
	logger    *zap.Logger
}

func newMeeting(t testing.TB, configure func(*AuthorityOptions)) *meeting {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &meeting{t: t, ctx: context.Background(), clock: newFakeClock(), authKey: key, logger: zap.NewNop()}
	m.store = e2eestore.NewMemory(m.clock)
	opts := AuthorityOptions{Room: "board-room", Instance: "2026-03-02T09:00Z#1", SigningKey: key, Store: m.store, Clock: m.clock}
	if configure != nil {
		configure(&opts)
	}
	if opts.Logger != nil {
		m.logger = opts.Logger
	}
	if m.authority, err = NewAuthority(m.ctx, opts); err != nil {
		t.Fatal(err)
	}
	return m
}

// party is one participant and the session it talks through.
type party struct {
	m         *meeting
	name      string
	client    *Client
	transport Transport
	local     *LocalTransport
	cred      *Credential
}

type joinOption func(*ClientOptions, *party)

func withKEM(k KEM) joinOption {
	return func(o *ClientOptions, _ *party) { o.KEM, o.AllowClassicKEM = k, o.AllowClassicKEM || k == KEMX25519 }
}

func withClassicAllowed() joinOption {
	return func(o *ClientOptions, _ *party) { o.AllowClassicKEM = true }
}

// withTransport wraps the honest session transport (an evil gateway's view of this party).
func withTransport(wrap func(*LocalTransport) Transport) joinOption {
	return func(o *ClientOptions, p *party) { p.transport = wrap(p.local); o.Transport = p.transport }
}

// register creates a client for name on authority a and registers it, without admitting it.
func (m *meeting) register(a *Authority, name string, opts ...joinOption) *party {
	m.t.Helper()
	return m.registerAs(a, name, Identity{Issuer: "https://idp.example", Subject: name}, opts...)
}

// registerAs is register for a device of identity id (a second device of one person has the same id).
func (m *meeting) registerAs(a *Authority, name string, id Identity, opts ...joinOption) *party {
	m.t.Helper()
	p := &party{m: m, name: name}
	p.local = NewLocalTransport(a, id, id.Subject, RoleParticipant)
	p.transport = p.local
	co := ClientOptions{Transport: p.local, AuthorityKey: m.authKey.Public().(ed25519.PublicKey), Room: a.Room(), ExpectIdentity: id, Clock: m.clock, Logger: m.logger}
	for _, o := range opts {
		o(&co, p)
	}
	var err error
	if p.client, err = NewClient(m.ctx, co); err != nil {
		m.t.Fatal(err)
	}
	if p.cred, err = p.client.Register(m.ctx); err != nil {
		m.t.Fatalf("%s: register: %v", name, err)
	}
	return p
}

// join registers name and admits it: one new epoch.
func (m *meeting) join(name string, opts ...joinOption) *party {
	m.t.Helper()
	p := m.register(m.authority, name, opts...)
	if _, err := m.authority.Admit(m.ctx, p.cred.Hash()); err != nil {
		m.t.Fatalf("admit %s: %v", name, err)
	}
	return p
}

// settled reports whether every party is a member at one epoch and holds the same epoch secret (the same
// security code) for it.
func settled(parties []*party) bool {
	first := parties[0].client.Status()
	for _, p := range parties {
		st := p.client.Status()
		if st.State != StateMember || st.SecurityCode == "" || st.Epoch != first.Epoch || st.SecurityCode != first.SecurityCode {
			return false
		}
	}
	return true
}

// settle runs Sync rounds until every party holds the head epoch's secret. If the designated committer is not
// among the parties, the others commit after the commit timeout, which settle lets pass.
func settle(t *testing.T, parties ...*party) {
	t.Helper()
	for round := 0; round < 8; round++ {
		for _, p := range parties {
			if _, err := p.client.Sync(context.Background()); err != nil {
				t.Fatalf("%s: sync round %d: %v", p.name, round, err)
			}
		}
		if settled(parties) {
			return
		}
		if round == 3 {
			parties[0].m.clock.Advance(3 * time.Second)
		}
	}
	t.Fatalf("parties did not settle")
}

// syncErr runs one Sync and returns its error.
func syncErr(p *party) error {
	_, err := p.client.Sync(context.Background())
	return err
}

// requireAlarm checks that err is the alarm kind and that the client is halted for good.
func requireAlarm(t *testing.T, p *party, err, kind error) *AlarmError {
	t.Helper()
	var al *AlarmError
	if !errors.Is(err, kind) || !errors.Is(err, ErrAlarm) || !errors.As(err, &al) {
		t.Fatalf("%s: error = %v, want alarm %v", p.name, err, kind)
	}
	if st := p.client.Status(); st.State != StateHalted {
		t.Fatalf("%s: state = %v after alarm, want halted", p.name, st.State)
	}
	if err := syncErr(p); !errors.Is(err, ErrHalted) || !errors.Is(err, kind) {
		t.Fatalf("%s: sync after alarm = %v, want ErrHalted wrapping %v", p.name, err, kind)
	}
	if _, err := p.client.EncryptionKey(0); !errors.Is(err, ErrHalted) {
		t.Fatalf("%s: EncryptionKey after alarm = %v, want ErrHalted", p.name, err)
	}
	p.client.mu.Lock()
	held := p.client.current != nil || len(p.client.old) > 0 || len(p.client.kps) > 0
	p.client.mu.Unlock()
	if held {
		t.Fatalf("%s: keys kept after alarm", p.name)
	}
	return al
}

func names(parties []*party) string {
	s := ""
	for _, p := range parties {
		s += fmt.Sprintf("%s ", p.name)
	}
	return s
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
