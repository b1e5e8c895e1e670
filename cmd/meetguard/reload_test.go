package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/devidp"
	"github.com/meetguard/meetguard/gateway/syncbuf"
)

// reloadEnv is `meetguard serve --config FILE` run in-process (the
// binary's own code path, signals included) against a real OpenID
// provider (the dev provider on its own listener) and a real upstream
// that echoes WebSocket messages and counts uploaded bytes.
type reloadEnv struct {
	t         *testing.T
	base      string
	cfgPath   string
	auditPath string
	idp       *devidp.Provider
	log       *syncbuf.Buffer
	upstream  string
	issuer    string
	secret    string
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func startReloadEnv(t *testing.T) *reloadEnv {
	t.Helper()
	e := &reloadEnv{t: t, log: &syncbuf.Buffer{}, secret: "reload-test-client-secret"}
	dir := t.TempDir()
	e.cfgPath, e.auditPath = filepath.Join(dir, "meetguard.yaml"), filepath.Join(dir, "audit.log")
	listen := freePort(t)
	e.base = "http://" + listen

	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = "http://" + idpLn.Addr().String() + "/idp"
	e.idp, err = devidp.New(devidp.Options{Issuer: e.issuer, Logger: zap.NewNop(),
		Clients: []devidp.Client{{ID: "meetguard", Secret: e.secret, RedirectURIs: []string{e.base + "/.meetguard/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv := &http.Server{Handler: e.idp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = idpSrv.Serve(idpLn) }()
	t.Cleanup(func() { _ = idpSrv.Close() })

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ws") {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, msg); err != nil {
					return
				}
			}
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			// The gateway cut the body at its limit.
			return
		}
		fmt.Fprintf(w, "got %d bytes", n)
	})}
	go func() { _ = up.Serve(upLn) }()
	t.Cleanup(func() { _ = up.Close() })
	e.upstream = "http://" + upLn.Addr().String()

	e.writeConfig(1<<20, "info", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- runServe(ctx, []string{"--config", e.cfgPath}, io.Discard, e.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(e.base + "/.meetguard/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, e.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never became ready:\n%s", e.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeConfig writes the config file with a body limit, a log level and
// extra YAML appended.
func (e *reloadEnv) writeConfig(maxBody int, level, extra string) {
	e.t.Helper()
	listen := strings.TrimPrefix(e.base, "http://")
	cfg := fmt.Sprintf(`listen: %s
public_url: %s
oidc:
  issuer: %s
  client_id: meetguard
  client_secret: %s
session:
  secret: %s
upstreams:
  - name: app
    url: %s
audit:
  path: %s
limits:
  max_body_bytes: %d
log:
  level: %s
%s`, listen, e.base, e.issuer, e.secret, strings.Repeat("k", 40), e.upstream, e.auditPath, maxBody, level, extra)
	// Written whole and renamed, as an operator's editor or config
	// management does, so a signal never sees half a file.
	tmp := e.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfgPath); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reloadEnv) token() string {
	e.t.Helper()
	resp, err := http.PostForm(e.idp.DevTokenURL(), url.Values{"user": {"alice@example.com"}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		e.t.Fatalf("dev token: %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// upload posts n bytes through the gateway and returns the status.
func (e *reloadEnv) upload(tok string, n int) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+"/upload", bytes.NewReader(bytes.Repeat([]byte("x"), n)))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// records returns the audit records of one event.
func (e *reloadEnv) records(event string) []map[string]json.RawMessage {
	e.t.Helper()
	var out []map[string]json.RawMessage
	_, err := audit.ReadEntries(context.Background(), []string{e.auditPath}, func(en *audit.Entry) error {
		if en.Event == event {
			m := map[string]json.RawMessage{}
			for _, mb := range en.Members {
				m[mb.Key] = mb.Value
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// hup sends SIGHUP to this process, as `systemctl reload` does, and waits
// until the audit log has n records of event.
func (e *reloadEnv) hup(event string, n int) map[string]json.RawMessage {
	e.t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if rs := e.records(event); len(rs) >= n {
			return rs[n-1]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s record after SIGHUP; log:\n%s", event, e.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func strs(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var s []string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestServe_SIGHUPReloadsConfiguration: a changed limit takes effect on
// SIGHUP while a proxied WebSocket stays open; what needs a restart is
// named, not applied; a broken file is refused with `config validate`'s
// words and the old configuration keeps serving.
func TestServe_SIGHUPReloadsConfiguration(t *testing.T) {
	e := startReloadEnv(t)
	tok := e.token()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.base, "http")+"/chat/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatalf("websocket through the gateway: %v\n%s", err, e.log.String())
	}
	defer ws.CloseNow()
	echo := func(msg string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("websocket write %q: %v", msg, err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("websocket echo %q: %q, %v", msg, got, err)
		}
	}
	echo("before")
	if st := e.upload(tok, 4096); st != http.StatusOK {
		t.Fatalf("4 KiB upload under a 1 MiB limit: %d", st)
	}

	// A lower limit, and a setting that needs a restart.
	e.writeConfig(1024, "debug", "")
	rec := e.hup(audit.EventConfigReload, 1)
	if got := strs(t, rec["changed"]); len(got) != 1 || got[0] != "limits.max_body_bytes" {
		t.Errorf("changed = %v, want [limits.max_body_bytes]", got)
	}
	if got := strs(t, rec["restart_required"]); len(got) != 1 || got[0] != "log.level" {
		t.Errorf("restart_required = %v, want [log.level]", got)
	}
	if st := e.upload(tok, 4096); st != http.StatusRequestEntityTooLarge {
		t.Errorf("4 KiB upload after lowering the limit to 1 KiB: %d, want 413", st)
	}
	if st := e.upload(tok, 512); st != http.StatusOK {
		t.Errorf("512 B upload: %d", st)
	}
	echo("after reload")
	if !strings.Contains(e.log.String(), "configuration reloaded") {
		t.Errorf("no log line for the reload:\n%s", e.log.String())
	}

	// A broken file: refused, with config validate's words, the old
	// configuration (1 KiB) keeps serving.
	e.writeConfig(1024, "debug", "limitz:\n  max_body_bytes: 5\n")
	rej := e.hup(audit.EventConfigReloadRejected, 1)
	var validate bytes.Buffer
	if code := runConfig(context.Background(), []string{"validate", "--config", e.cfgPath}, io.Discard, &validate); code == 0 {
		t.Fatal("config validate accepted the broken file")
	}
	first, _, _ := strings.Cut(validate.String(), "\n")
	var problem string
	_ = json.Unmarshal(rej["error"], &problem)
	if first == "" || !strings.Contains(problem, first) {
		t.Errorf("rejection says %q; config validate says %q", problem, first)
	}
	if st := e.upload(tok, 4096); st != http.StatusRequestEntityTooLarge {
		t.Errorf("after a rejected reload: 4 KiB upload %d, want 413 (the old 1 KiB limit)", st)
	}
	if st := e.upload(tok, 512); st != http.StatusOK {
		t.Errorf("after a rejected reload: 512 B upload %d, want 200", st)
	}
	echo("after rejection")
	if !strings.Contains(e.log.String(), "configuration reload rejected; the old configuration keeps serving") {
		t.Errorf("no log line for the rejection:\n%s", e.log.String())
	}
	if n := len(e.records(audit.EventConfigReload)); n != 1 {
		t.Errorf("%d config.reload records, want 1", n)
	}
}
