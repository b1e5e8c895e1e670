package e2eeapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/sframe"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestGateway_ClientsShareKeysJoinRekeysKickLocksOut is the meeting the issue asks for, through a real gateway
// over HTTP: three clients agree on every sender's SFrame key and the security code, a fourth joining moves
// everyone to a new epoch, a kicked member can open nothing of the next one, and nothing the gateway stored or
// logged contains a media key.
func TestGateway_ClientsShareKeysJoinRekeysKickLocksOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "standup"
	alice, bob, carol, dave := e.user("alice"), e.user("bob"), e.user("carol"), e.user("dave")
	e.createRoom(room, alice, rooms.SettingsChange{})

	var secrets [][]byte
	recordKeys := func(clients ...*e2ee.Client) {
		for _, c := range clients {
			for stream := range uint8(2) {
				if k, err := c.EncryptionKey(stream); err == nil {
					key, salt := k.Material()
					secrets = append(secrets, bytes.Clone(key[:]), bytes.Clone(salt[:]))
				}
			}
		}
	}

	e.admit(alice, room, rooms.RoleHost)
	pids := map[string]rooms.ParticipantID{}
	for _, u := range []*user{bob, carol} {
		pids[u.name] = e.admit(u, room, rooms.RoleParticipant).ID
	}
	ca, cb, cc := e.client(alice, room, 0), e.client(bob, room, 0), e.client(carol, room, e2ee.KEMXWing)
	for _, c := range []*e2ee.Client{ca, cb, cc} {
		e.run(c)
	}
	st3 := e.settle([]*e2ee.Client{ca, cb, cc}, 3)

	t.Run("same keys and code", func(t *testing.T) {
		for _, c := range []*e2ee.Client{ca, cb, cc} {
			if got := c.Status().SecurityCode; got != st3.SecurityCode || len(got) != 47 {
				t.Fatalf("security codes differ: %q vs %q", got, st3.SecurityCode)
			}
		}
		exchangeFrames(t, []*e2ee.Client{ca, cb, cc})
		recordKeys(ca, cb, cc)
		// Identity, name and role come from the token and the admission, never from the client.
		cred := ca.Credential()
		if cred.Identity.Issuer != e.idp.URL || cred.Identity.Subject != "alice-sub" || cred.DisplayName != "Alice" || cred.Role != e2ee.RoleHost {
			t.Fatalf("alice's credential says %+v %q %v", cred.Identity, cred.DisplayName, cred.Role)
		}
		if cb.Credential().Role != e2ee.RoleParticipant {
			t.Fatalf("bob's credential role %v", cb.Credential().Role)
		}
	})

	e.admit(dave, room, rooms.RoleParticipant)
	cd := e.client(dave, room, 0)
	e.run(cd)
	st4 := e.settle([]*e2ee.Client{ca, cb, cc, cd}, 4)

	t.Run("joiner moves everyone to a new epoch", func(t *testing.T) {
		if st4.Epoch <= st3.Epoch || st4.SecurityCode == st3.SecurityCode {
			t.Fatalf("epoch %d -> %d, code changed: %v", st3.Epoch, st4.Epoch, st4.SecurityCode != st3.SecurityCode)
		}
		exchangeFrames(t, []*e2ee.Client{ca, cb, cc, cd})
		recordKeys(ca, cb, cc, cd)
	})

	if _, err := e.rooms.Remove(e.ctx, room, pids["carol"], false); err != nil {
		t.Fatal(err)
	}
	st5 := e.settle([]*e2ee.Client{ca, cb, cd}, 3)

	t.Run("kicked member opens nothing of the next epoch", func(t *testing.T) {
		carolCred := cc.Credential().Hash()
		for _, m := range st5.Members {
			if m.Credential == carolCred {
				t.Fatal("carol is still in the roster")
			}
		}
		// She still holds her session and her ticket; the gateway serves her nothing of the new epoch.
		for _, tc := range []struct{ method, endpoint, query string }{
			{"GET", "keys", "epoch=" + itoa(st5.Epoch)},
			{"GET", "roster", "since=" + itoa(st4.Epoch)},
			{"GET", "roster", "since=0"},
			{"GET", "wait", "after=0&wait=0s"},
		} {
			if resp, b := e.call(carol, tc.method, room, tc.endpoint, tc.query, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s?%s as kicked carol: %d %s", tc.method, tc.endpoint, tc.query, resp.StatusCode, b)
			}
		}
		// Nothing of the new epoch is sealed to her: no stored sealed secret names her credential as recipient.
		sealedTo := func(c *e2ee.Client) []byte {
			return []byte("sealed/" + pad20(st5.Epoch) + "/" + c.Credential().Hash().String())
		}
		dump := e.storeDump()
		if !bytes.Contains(dump, sealedTo(ca)) && !bytes.Contains(dump, sealedTo(cb)) {
			t.Fatal("positive control failed: no secret of the new epoch sealed to alice or bob found")
		} else if bytes.Contains(dump, sealedTo(cc)) {
			t.Fatal("the gateway stored a secret of the new epoch sealed to the kicked member")
		}
		// And a frame under any new key opens nowhere at her.
		exchangeFrames(t, []*e2ee.Client{ca, cb, cd})
		for _, s := range []*e2ee.Client{ca, cb, cd} {
			ct, err := s.Encrypt(0, nil, []byte("after the kick"))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := cc.Decrypt(nil, ct); err == nil {
				t.Fatal("kicked member decrypted a frame of the next epoch")
			}
			kid, _, _, _ := sframe.ParseHeader(ct)
			if _, _, err := cc.DecryptionKey(kid); err == nil {
				t.Fatalf("kicked member has a key for KID %#x", kid)
			}
		}
		recordKeys(ca, cb, cd)
	})

	t.Run("audit trail", func(t *testing.T) {
		if n := len(e.auditEvents("e2ee.key_registered")); n != 4 {
			t.Errorf("%d key registrations audited, want 4", n)
		}
		var kicked bool
		for _, en := range e.auditEvents("e2ee.epoch") {
			if en.Str("reason") == "member_removed" && en.Str("cause") == string(rooms.EventRemoved) {
				kicked = true
			}
		}
		if !kicked {
			t.Error("the kick's epoch is not in the audit log")
		}
	})

	t.Run("gateway state and logs hold no media key", func(t *testing.T) {
		auditFile, err := os.ReadFile(e.auditPath)
		if err != nil {
			t.Fatal(err)
		}
		haystacks := map[string][]byte{"store": e.storeDump(), "audit log": auditFile, "logs": e.logs.Bytes()}
		// Positive controls: the search finds what is there.
		if !bytes.Contains(haystacks["store"], ca.Credential().Bytes()) ||
			!bytes.Contains(haystacks["audit log"], []byte(ca.Credential().Hash().String())) ||
			!bytes.Contains(haystacks["logs"], []byte(ca.Credential().Hash().Short())) {
			t.Fatal("positive control failed: the search would find nothing")
		}
		if len(secrets) < 2*2*(3+4+3) {
			t.Fatalf("recorded only %d key and salt values", len(secrets))
		}
		for _, s := range secrets {
			for _, enc := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)),
				[]byte(base64.RawStdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s))} {
				for where, h := range haystacks {
					if bytes.Contains(h, enc) {
						t.Fatalf("media key material %x found in the gateway's %s", s, where)
					}
				}
			}
		}
	})
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func pad20(n uint64) string { return fmt.Sprintf("%020d", n) }
