package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
)

// forgeFromSpec writes n records from seq 1, hashed and linked exactly as
// docs/audit.md specifies, with no checkpoint: a log built by someone who
// read the format and holds no key.
func forgeFromSpec(t *testing.T, path string, n int) {
	t.Helper()
	prev := strings.Repeat("0", 64)
	var b strings.Builder
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf(`{"seq":%d,"ts":"2026-03-02T09:00:%02d.000000000Z","event":"admission.decision","prev":"%s","room":"standup","subject":"mallory","decision":"allow"}`,
			i, i%60, prev)
		sum := sha256.Sum256([]byte(body))
		prev = hex.EncodeToString(sum[:])
		b.WriteString(body[:len(body)-1] + `,"hash":"` + prev + `"}` + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuditCLI_ForgedLogIsTamperedAndTheGatewayWillNotSignIt: the forged
// log is refused by `audit verify` with the trusted key (exit 1), and a
// gateway pointed at it does not start, rather than sealing it.
func TestAuditCLI_ForgedLogIsTamperedAndTheGatewayWillNotSignIt(t *testing.T) {
	trusted := writeLog(t) // the gateway's real key is trusted.key.pub
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	forgeFromSpec(t, path, 5000)
	for _, args := range [][]string{
		{"audit", "verify", "--key", trusted + ".pub", path},
		{"audit", "verify", "--sealed", "--key", trusted + ".pub", path},
	} {
		code, out, errs := runCLI(args...)
		if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "genesis") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}

	// Restart on the forged file: the gateway fails closed and says what
	// to inspect; the file is left as it was.
	forgeFromSpec(t, path, 2)
	before, _ := os.ReadFile(path)
	if _, err := audit.LoadOrCreateKey(path + ".key"); err != nil { // the dev gateway's own key
		t.Fatal(err)
	}
	err := dev(context.Background(), devOptions{listen: "127.0.0.1:0", audit: path, stdout: io.Discard, logger: zap.NewNop()})
	if err == nil || !strings.Contains(err.Error(), "meetguard audit verify") || !strings.Contains(err.Error(), "genesis") {
		t.Fatalf("dev on a forged audit log: err = %v, want a refusal naming what to run", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("the gateway wrote to the forged log")
	}
	code, out, _ := runCLI("audit", "verify", "--sealed", "--key", path+".key.pub", path)
	if code != 1 {
		t.Fatalf("forged log after a refused restart: exit %d\n%s", code, out)
	}
}
