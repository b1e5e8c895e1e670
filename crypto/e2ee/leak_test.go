package e2ee

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
)

// TestAuthority_StoreAndLogsNeverHoldMediaKeys runs a meeting through joins, a kick and a timer re-key, records
// every epoch secret the clients draw or open, every authenticator and every SFrame key and salt they derive, and searches everything the
// gateway stored and everything logged (raw, hex and base64) for them.
func TestAuthority_StoreAndLogsNeverHoldMediaKeys(t *testing.T) {
	// A file, not a buffer: the authority's goroutines may still log while
	// the test reads, and the layout keeps crypto/ from gateway/syncbuf.
	logs, err := os.CreateTemp(t.TempDir(), "authority-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel))
	m := newMeeting(t, func(o *AuthorityOptions) { o.Logger = logger })

	var mu sync.Mutex
	var secrets [][]byte
	record := func(b []byte) {
		mu.Lock()
		secrets = append(secrets, bytes.Clone(b))
		mu.Unlock()
	}
	join := func(name string) *party {
		p := m.register(m.authority, name)
		p.client.observeSecret = record
		must[*Roster](t)(m.authority.Admit(m.ctx, p.cred.Hash()))
		return p
	}
	recordKeys := func(parties ...*party) {
		for _, p := range parties {
			for stream := range uint8(2) {
				if k, err := p.client.EncryptionKey(stream); err == nil {
					key, salt := k.Material()
					record(key[:])
					record(salt[:])
				}
			}
			p.client.mu.Lock()
			if e := p.client.current; e != nil {
				record(e.keys.auth[:])
				record(e.keys.prk)
			}
			for _, k := range p.client.kps {
				record(must[[]byte](t)(k.priv.Bytes()))
			}
			p.client.mu.Unlock()
		}
	}

	alice, bob, carol := join("alice"), join("bob"), join("carol")
	settle(t, alice, bob, carol)
	recordKeys(alice, bob, carol)
	dave := join("dave")
	settle(t, alice, bob, carol, dave)
	recordKeys(alice, bob, carol, dave)
	must[*Roster](t)(m.authority.Remove(m.ctx, carol.cred.Hash()))
	settle(t, alice, bob, dave)
	m.clock.Advance(5 * time.Minute)
	settle(t, alice, bob, dave)
	recordKeys(alice, bob, dave)

	var stored bytes.Buffer
	for _, e := range must[[]e2eestore.Entry](t)(m.store.List(m.ctx, "")) {
		stored.WriteString(e.Key)
		stored.Write(e.Value)
	}
	haystacks := map[string][]byte{"store": stored.Bytes(), "logs": must[[]byte](t)(os.ReadFile(logs.Name()))}

	// The search must be able to find things: the store holds alice's credential, the logs name her.
	if !bytes.Contains(haystacks["store"], alice.cred.Bytes()) || !bytes.Contains(haystacks["logs"], []byte(alice.cred.Hash().Short())) {
		t.Fatal("positive control failed: the search would find nothing")
	}
	mu.Lock()
	defer mu.Unlock()
	// Secrets of 6 epochs and generations, each opened by every other member; keys, salts, authenticators and KEM
	// private keys of three snapshots.
	if len(secrets) < 60 {
		t.Fatalf("recorded only %d secrets", len(secrets))
	}
	for _, s := range secrets {
		for _, enc := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)),
			[]byte(base64.RawURLEncoding.EncodeToString(s))} {
			for where, h := range haystacks {
				if bytes.Contains(h, enc) {
					t.Fatalf("key material %x found in the gateway's %s", s, where)
				}
			}
		}
	}
}
