package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := ParseTime(s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestQuery_Golden(t *testing.T) {
	path := writeFixture(t, t.TempDir(), 5)
	cases := []struct {
		name   string
		filter Filter
		format Format
		want   int
	}{
		{"query_all", Filter{}, FormatTable, -1},
		// --wide is the table as it was before the compact default,
		// byte for byte (this golden file is the old query_all).
		{"query_all_wide", Filter{}, FormatWide, -1},
		{"query_room_standup_deny", Filter{Room: "standup", Decision: DecisionDeny}, FormatTable, 1},
		{"query_subject_bob_json", Filter{Subject: "bob@partner.example"}, FormatJSON, 6},
		{"query_event_room_glob", Filter{Event: "room.*"}, FormatTable, 4},
		{"query_window", Filter{Since: mustTime(t, "2026-03-02T09:02:00Z"), Until: mustTime(t, "2026-03-02T09:03:00Z")}, FormatTable, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, st, err := Query(context.Background(), &out, []string{path}, tc.filter, tc.format)
			if err != nil || len(st.Skipped) > 0 {
				t.Fatalf("err=%v skipped=%v", err, st.Skipped)
			}
			if tc.want >= 0 && n != tc.want {
				t.Errorf("%d records matched, want %d", n, tc.want)
			}
			golden(t, tc.name, out.Bytes())
		})
	}
}

// TestQuery_CompactTableFitsTheTerminal: no line of the default table is
// wider than 120 columns, even with long people, rooms and 64-character
// revisions, and ids are shortened; --wide keeps them in full.
func TestQuery_CompactTableFitsTheTerminal(t *testing.T) {
	l := openTestLog(t, Options{})
	rev := strings.Repeat("ab12", 16)
	if err := l.Record(context.Background(), EventAdmissionDecision, decision("a-very-long-room-name-for-the-board", strings.Repeat("someone.with.a.long.name", 3)+"@example.com", DecisionDeny, "",
		[]string{"not_invited", "domain_blocked", "mfa_required"}, strings.Repeat("d", 32))...); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), EventPolicyReload, zap.String(FieldRevision, rev), zap.String(FieldPreviousRevision, rev), zap.String(FieldTrigger, "watch"), zap.Bool(FieldShadow, false)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, format := range []Format{FormatTable, FormatWide} {
		var out bytes.Buffer
		if _, _, err := Query(context.Background(), &out, []string{l.opts.Path}, Filter{}, format); err != nil {
			t.Fatal(err)
		}
		widest := 0
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			widest = max(widest, utf8.RuneCountInString(line))
		}
		switch {
		case format == FormatTable && (widest > TableWidth || strings.Contains(out.String(), rev) || !strings.Contains(out.String(), "revision=ab12ab12…")):
			t.Errorf("compact table (widest line %d):\n%s", widest, out.String())
		case format == FormatWide && (widest <= TableWidth || !strings.Contains(out.String(), "revision="+rev)):
			t.Errorf("wide table (widest line %d):\n%s", widest, out.String())
		}
	}
}

func TestQuery_JSONOutputStillVerifies(t *testing.T) {
	path := writeFixture(t, t.TempDir(), 5)
	var out bytes.Buffer
	if _, _, err := Query(context.Background(), &out, []string{path}, Filter{}, FormatJSON); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.log")
	os.WriteFile(copyPath, out.Bytes(), 0o600)
	if res := verifyFiles(t, []string{copyPath}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatal(res.Problem)
	}
}

func TestQuery_SubjectMatchesHashedIdentities(t *testing.T) {
	l := openTestLog(t, Options{HashedFields: []string{FieldSubject}})
	l.Record(context.Background(), EventLoginSuccess, zap.String(FieldSubject, "alice@example.com"))
	l.Record(context.Background(), EventLoginSuccess, zap.String(FieldSubject, "bob@example.com"))
	l.Close()
	var out bytes.Buffer
	n, _, err := Query(context.Background(), &out, []string{l.opts.Path}, Filter{Subject: "alice@example.com"}, FormatJSON)
	if err != nil || n != 1 || strings.Contains(out.String(), "alice@example.com") {
		t.Fatalf("n=%d err=%v out=%s", n, err, out.String())
	}
}

func TestReport_Golden(t *testing.T) {
	path := writeFixture(t, t.TempDir(), 5)
	pub := testKey().Public().(ed25519.PublicKey)
	r, err := BuildReport(context.Background(), []string{path}, ReportOptions{Room: "standup", Since: mustTime(t, "2026-03-02T09:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	r.Integrity = IntegritySummary(Verify(context.Background(), []string{path}, VerifyOptions{Keys: []ed25519.PublicKey{pub}}))
	var text, md bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	golden(t, "report_standup", text.Bytes())
	golden(t, "report_standup_markdown", md.Bytes())

	// The story, checked apart from the formatting.
	if len(r.Admitted) != 2 || r.Admitted[1].Subject != "bob@partner.example" || r.Admitted[1].AdmittedBy != "alice@example.com" {
		t.Errorf("admitted: %+v", r.Admitted)
	}
	if len(r.Refused) != 1 || r.Refused[0].Subject != "mallory@bombers.example" || strings.Join(r.Refused[0].Reasons, ",") != "not_invited,domain_blocked" {
		t.Errorf("refused: %+v", r.Refused)
	}
	if len(r.Lobby) != 2 || r.Lobby[0].Outcome != "admitted" || r.Lobby[1].Outcome != "turned away" {
		t.Errorf("lobby: %+v", r.Lobby)
	}
	for _, a := range r.Admitted {
		if a.Subject == "dave@example.com" {
			t.Error("a record of another room is in the report")
		}
	}
}

func TestFollow_SeesNewRecordsAcrossRotation(t *testing.T) {
	l := openTestLog(t, Options{MaxFileBytes: 4 << 10})
	for i := range 5 {
		l.Record(context.Background(), EventRoomLock, zap.String(FieldRoom, "old"), zap.Int("i", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []int
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, l.opts.Path, Filter{Room: "live"}, FollowOptions{Backlog: 10, Poll: 300 * time.Millisecond}, func(e *Entry) error {
			mu.Lock()
			defer mu.Unlock()
			var i int
			for _, c := range e.Str("i") {
				i = i*10 + int(c-'0')
			}
			got = append(got, i)
			return nil
		})
	}()
	// Several rotations at 4 KiB, written faster than the follower polls,
	// so it must catch up on files rotated between two of its polls.
	const n = 200
	for i := range n {
		if err := l.Record(context.Background(), EventRoomLock, zap.String(FieldRoom, "live"), zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("followed %d records, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("record %d is i=%d: out of order or missing", i, v)
		}
	}
	if len(logFiles(t, l.opts.Path)) < 3 {
		t.Fatal("the log did not rotate: the test proves nothing about rotation")
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-03-02T09:00:00Z":      time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		"2026-03-02T09:00:00+01:00": time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
		"2026-03-02T09:00":          time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		"2026-03-02":                time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		"2h":                        time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
		"-30m":                      time.Date(2026, 3, 2, 11, 30, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "09:00"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}
