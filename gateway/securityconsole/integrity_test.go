package securityconsole_test

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestIntegrityPage_RewriteOfVerifiedRecordIsShownTampered: the integrity
// page shows the chain verified; then someone with write access to the log
// changes a decision in the middle of the already verified file, in place.
// The next view shows the chain tampered at that record's line.
func TestIntegrityPage_RewriteOfVerifiedRecordIsShownTampered(t *testing.T) {
	e := newEnv(t)
	e.meeting("board", 30, 10)
	sam := e.bearer("sam", "secops")
	e.app.SecurityConsole.CheckIntegrity(e.ctx)
	status, body, _ := e.get(nil, "/.meetguard/security/integrity", sam)
	if status != http.StatusOK || !strings.Contains(body, `data-state="verified"`) {
		t.Fatalf("integrity page of a pristine log: %d %s", status, body)
	}

	b, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	var off int64
	line := 0
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"subject":"guest-05"`)) && bytes.Contains(l, []byte(`"decision":"deny"`)) {
			line = i + 1
			break
		}
		off += int64(len(l))
	}
	if line == 0 {
		t.Fatal("no refusal of guest-05 in the log")
	}
	at := bytes.Index(lines[line-1], []byte(`"decision":"deny"`))
	f, err := os.OpenFile(e.auditPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// "deny" becomes "allo": the same length, written over the record
	// while the gateway keeps appending.
	if _, err := f.WriteAt([]byte(`"decision":"allo"`), off+int64(at)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	e.app.SecurityConsole.CheckIntegrity(e.ctx)
	status, body, _ = e.get(nil, "/.meetguard/security/integrity", sam)
	page := html.UnescapeString(body)
	if status != http.StatusOK || !strings.Contains(page, `data-state="tampered"`) || !strings.Contains(page, fmt.Sprintf("%s:%d</code>", e.auditPath, line)) {
		t.Fatalf("after rewriting line %d: %d %s", line, status, page)
	}
}
