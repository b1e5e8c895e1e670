package e2eeapi_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// webLine is one JSON line of web/testlib/join.mjs: the TypeScript client's status, or an answer.
type webLine struct {
	State      string `json:"state"`
	Epoch      uint64 `json:"epoch"`
	Generation uint8  `json:"generation"`
	Code       string `json:"code"`
	Frame      string `json:"frame"`
	Members    []struct {
		Subject     string `json:"subject"`
		Fingerprint string `json:"fingerprint"`
		Self        bool   `json:"self"`
		KEM         uint16 `json:"kem"`
	} `json:"members"`
	Alarm        string `json:"alarm"`
	Decrypted    string `json:"decrypted"`
	Sender       string `json:"sender"`
	DecryptError string `json:"decrypt_error"`
	Exit         string `json:"exit"`
}

// webClient is the TypeScript client (web/src/e2ee) running under Node against the real gateway.
type webClient struct {
	stdin io.Writer
	mu    sync.Mutex
	lines []webLine
	more  chan struct{}
}

// webDir returns the npm project, or skips when Node or its installed dependencies are missing.
func webDir(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the web client's interoperability test needs Node 20 (web/)")
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

func (e *env) startWebClient(t *testing.T, u *user, room string) *webClient {
	t.Helper()
	u.mu.Lock()
	ticket := u.tickets[room]
	u.mu.Unlock()
	return startJoinMJS(t, e.ctx, "MG_GATEWAY="+e.URL, "MG_ROOM="+room, "MG_TOKEN="+u.token, "MG_TICKET="+ticket,
		"MG_AUTHORITY="+hex.EncodeToString(e.api.PublicKey()), "MG_EXPECT_SUB="+u.id.Subject, "MG_EXPECT_ISS="+u.id.Issuer)
}

// startJoinMJS runs web/testlib/join.mjs with the MG_* settings in env until ctx ends or the test does.
func startJoinMJS(t *testing.T, ctx context.Context, env ...string) *webClient {
	t.Helper()
	node, dir := webDir(t)
	cmd := exec.CommandContext(ctx, node, filepath.Join("testlib", "join.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &webClient{stdin: stdin, more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l webLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("web client wrote %q: %v", sc.Text(), err)
				continue
			}
			w.mu.Lock()
			w.lines = append(w.lines, l)
			w.mu.Unlock()
			select {
			case w.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("web client stderr:\n%s", stderr.String())
		}
	})
	return w
}

// waitFor returns the first line from index from on that satisfies ok, failing the test after 30 s.
func (w *webClient) waitFor(t *testing.T, what string, ok func(webLine) bool) webLine {
	t.Helper()
	deadline := time.After(30 * time.Second)
	next := 0
	for {
		w.mu.Lock()
		lines := w.lines[next:]
		next = len(w.lines)
		w.mu.Unlock()
		for _, l := range lines {
			if ok(l) {
				return l
			}
		}
		select {
		case <-w.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("web client never reported %s; its lines: %+v", what, w.lines)
		}
	}
}

func (w *webClient) decrypt(t *testing.T, frame []byte) webLine {
	t.Helper()
	w.mu.Lock()
	from := len(w.lines)
	w.mu.Unlock()
	if _, err := fmt.Fprintf(w.stdin, "decrypt %x\n", frame); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, l := range w.lines[from:] {
			if l.Decrypted != "" || l.DecryptError != "" {
				w.mu.Unlock()
				return l
			}
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("web client did not answer a decrypt request")
	return webLine{}
}

// settledWith waits until the web client and every Go client hold the same epoch secret (the same security
// code for the same roster) with want members, and returns the Go status.
func (e *env) settledWith(w *webClient, clients []*e2ee.Client, want int) (e2ee.Status, webLine) {
	e.t.Helper()
	st := e.settle(clients, want)
	l := w.waitFor(e.t.(*testing.T), fmt.Sprintf("epoch %d with %d members and code %s", st.Epoch, want, st.SecurityCode), func(l webLine) bool {
		return l.State == "member" && l.Epoch == st.Epoch && len(l.Members) == want && l.Code == st.SecurityCode
	})
	return st, l
}

// TestGateway_WebClientAndGoClientShareKeys runs the TypeScript client (under Node) and Go clients in one room
// through a real gateway over HTTP: they open each other's sealed epoch secrets, show the same security code
// and the same device fingerprints, decrypt each other's SFrame frames, follow a join, and a kick of the web
// client leaves it removed with nothing of the next epoch.
func TestGateway_WebClientAndGoClientShareKeys(t *testing.T) {
	e := newEnv(t, envOptions{})
	const room = "interop"
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	bobPID := e.admit(bob, room, rooms.RoleParticipant).ID
	ca := e.client(alice, room, 0)
	e.run(ca)
	web := e.startWebClient(t, bob, room)

	st, l := e.settledWith(web, []*e2ee.Client{ca}, 2)
	t.Run("same code and fingerprints", func(t *testing.T) {
		if len(st.SecurityCode) != 47 {
			t.Fatalf("code %q", st.SecurityCode)
		}
		for i, m := range st.Members {
			if l.Members[i].Fingerprint != m.Fingerprint || l.Members[i].Subject != m.Identity.Subject || l.Members[i].KEM != uint16(e2ee.KEMXWing) {
				t.Fatalf("member %d: web sees %+v, Go sees %s %s", i, l.Members[i], m.Identity.Subject, m.Fingerprint)
			}
		}
	})
	t.Run("frames both ways", func(t *testing.T) {
		frame, _ := hex.DecodeString(l.Frame)
		pt, sender, err := ca.Decrypt([]byte("interop"), frame)
		if err != nil || string(pt) != fmt.Sprintf("from node at epoch %d", st.Epoch) {
			t.Fatalf("Go client cannot decrypt the web client's frame: %q %v", pt, err)
		}
		if sender.String() == ca.Credential().Hash().String() {
			t.Fatal("the web client's frame is named as alice's")
		}
		ct, err := ca.Encrypt(0, []byte("interop"), []byte("from go"))
		if err != nil {
			t.Fatal(err)
		}
		if got := web.decrypt(t, ct); got.Decrypted != "from go" || got.Sender != ca.Credential().Hash().String() {
			t.Fatalf("web client decrypted %+v", got)
		}
	})

	e.admit(carol, room, rooms.RoleParticipant)
	cc := e.client(carol, room, 0)
	e.run(cc)
	st3, l3 := e.settledWith(web, []*e2ee.Client{ca, cc}, 3)
	t.Run("a Go joiner moves the web client to the new epoch", func(t *testing.T) {
		if st3.Epoch <= st.Epoch || l3.Code == l.Code {
			t.Fatalf("epoch %d -> %d", st.Epoch, st3.Epoch)
		}
		frame, _ := hex.DecodeString(l3.Frame)
		if _, _, err := cc.Decrypt([]byte("interop"), frame); err != nil {
			t.Fatalf("carol cannot decrypt the web client's frame: %v", err)
		}
	})

	if _, err := e.rooms.Remove(e.ctx, room, bobPID, false); err != nil {
		t.Fatal(err)
	}
	st4 := e.settle([]*e2ee.Client{ca, cc}, 2)
	t.Run("kicked web client is removed and opens nothing of the next epoch", func(t *testing.T) {
		end := web.waitFor(t, "its removal", func(l webLine) bool { return l.Exit != "" || l.State == "removed" })
		if end.State != "removed" && end.Exit != "removed" {
			t.Fatalf("web client ended with %+v", end)
		}
		ct, err := ca.Encrypt(0, []byte("interop"), []byte("after the kick"))
		if err != nil {
			t.Fatal(err)
		}
		if got := web.decrypt(t, ct); got.DecryptError == "" {
			t.Fatalf("kicked web client decrypted a frame of epoch %d: %+v", st4.Epoch, got)
		}
	})
}
