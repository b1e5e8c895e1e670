package roomsapi_test

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// TestPasscode_BruteForceBlocksTheIdentityEvenWithTheRightPasscode:
// after the configured number of wrong guesses the identity is refused
// (429) even with the right passcode, from a new token and from another
// address, until the backoff and the failure memory pass; a colleague
// behind the attacker's address is not.
func TestPasscode_BruteForceBlocksTheIdentityEvenWithTheRightPasscode(t *testing.T) {
	const right = "314159"
	c := newCluster(t, clusterOptions{trustLoopback: true, rooms: func(cfg *rooms.Config) {
		r := &cfg.RateLimits
		r.BackoffBase, r.BackoffMax, r.FailureMemory = 1500*time.Millisecond, 1500*time.Millisecond, 1500*time.Millisecond
	}})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "vault", map[string]any{"lobby_enabled": false, "passcode": right})
	mallory := staff("mallory")
	const attackerIP, otherIP = "203.0.113.9", "198.51.100.20"
	joinFrom := func(w who, ip, passcode string) reply {
		return call(t, nil, http.MethodPost, n.apiURL("vault/join"), c.token(w), map[string]string{"passcode": passcode}, "X-Forwarded-For", ip)
	}

	for i := range 5 {
		guess := "00000" + strconv.Itoa(i)
		if r := joinFrom(mallory, attackerIP, guess); r.Status != http.StatusForbidden {
			t.Fatalf("wrong guess %d: %d %s", i, r.Status, r.Body)
		}
	}
	blocked := []struct {
		name     string
		who      who
		ip       string
		passcode string
	}{
		{"right passcode", mallory, attackerIP, right},
		{"right passcode, yet another new token", mallory, attackerIP, right},
		{"right passcode, other IP", mallory, otherIP, right},
	}
	for _, tc := range blocked {
		r := joinFrom(tc.who, tc.ip, tc.passcode)
		if r.Status != http.StatusTooManyRequests {
			t.Errorf("%s: %d %s, want 429", tc.name, r.Status, r.Body)
			continue
		}
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s: Retry-After %q", tc.name, r.Header.Get("Retry-After"))
		}
	}
	// Nobody else is punished for mallory: not elsewhere, not behind
	// the same address.
	if r := joinFrom(staff("olga"), otherIP, right); r.Status != http.StatusOK {
		t.Fatalf("unrelated person: %d %s", r.Status, r.Body)
	}
	if r := joinFrom(staff("nina"), attackerIP, right); r.Status != http.StatusOK {
		t.Fatalf("a colleague on the attacker's address: %d %s", r.Status, r.Body)
	}
	// Once backoff and failure memory pass, the right passcode works.
	deadline := time.Now().Add(6 * time.Second)
	for {
		r := joinFrom(mallory, attackerIP, right)
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after the backoff: %d %s", r.Status, r.Body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.auditPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{right, "000003"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("audit log contains passcode %q", secret)
			}
		}
	}
}
