package policy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const auditFixture = "testdata/replay/audit.jsonl"

// replayCandidate is the shipped rules with the fixture's configuration: the
// company moved to example.org and rooms hold five people by default.
func replayCandidate(t *testing.T) *Engine {
	t.Helper()
	dir := copyShipped(t)
	data, err := os.ReadFile("testdata/replay/candidate-data.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"data.json": string(data)})
	return newEngine(t, Options{Dir: dir})
}

func TestReplay_ListsPeopleTreatedDifferently(t *testing.T) {
	e := replayCandidate(t)
	rep, err := ReplayFiles(context.Background(), e, []string{auditFixture})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 5 || rep.Other != 2 || rep.Revision != e.Revision() {
		t.Errorf("decisions=%d other=%d revision=%s, want 5, 2, %s", rep.Decisions, rep.Other, rep.Revision, e.Revision())
	}

	type change struct {
		email, room, old, new string
		count, line           int
	}
	want := []change{
		{"alice@example.com", "weekly-sync", "allow participant [staff_domain]", "lobby viewer [guest_lobby]", 2, 2},
		{"bob@example.org", "standup", "lobby viewer [guest_lobby]", "deny [room_full]", 1, 6},
	}
	if len(rep.Changes) != len(want) {
		t.Fatalf("changes = %+v, want %d", rep.Changes, len(want))
	}
	for i, w := range want {
		c := rep.Changes[i]
		got := change{c.Email, c.Room, Summary(c.Old), Summary(c.New), c.Count, c.Line}
		if got != w {
			t.Errorf("change %d = %+v, want %+v", i, got, w)
		}
		if c.Iss != "https://idp.example.com" || c.Sub == "" || c.File != auditFixture {
			t.Errorf("change %d does not say who or where: %+v", i, c)
		}
	}

	wantWarnings := map[int]string{4: "not a JSON object", 8: "without input", 10: "not a JSON object", 11: "room.capacity"}
	if len(rep.Warnings) != len(wantWarnings) {
		t.Errorf("warnings = %v, want lines 4, 8, 10, 11", rep.Warnings)
	}
	for _, w := range rep.Warnings {
		if want, ok := wantWarnings[w.Line]; !ok || !strings.Contains(w.Problem, want) || !strings.HasPrefix(w.String(), auditFixture+":") {
			t.Errorf("warning %q, want line %d to mention %q", w, w.Line, want)
		}
	}
}

// Replaying under the policy that is serving finds nobody when the log
// was written by an equivalent policy: a change in the report is real.
func TestReplay_SamePolicyFindsNoChanges(t *testing.T) {
	e := replayCandidate(t)
	var log strings.Builder
	for _, in := range []Input{staffInput(), guestInput(), hostInput()} {
		d := e.Decide(context.Background(), in)
		rec := auditRecord(t, in, d)
		log.WriteString(rec + "\n")
	}
	rep := NewReplayReport(e)
	if err := Replay(context.Background(), e, "fresh.jsonl", strings.NewReader(log.String()), rep); err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 3 || len(rep.Changes) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("report %+v, want 3 decisions and no changes", rep)
	}
}

func TestReplay_LongAndBlankLines(t *testing.T) {
	e := replayCandidate(t)
	d := e.Decide(context.Background(), staffInput())
	log := "\n   \n" + `{"event":"admission.decision","input":{"identity":{"name":"` + strings.Repeat("x", maxAuditLineBytes) + `"}}}` + "\n" +
		auditRecord(t, staffInput(), d) + "\r\n" + auditRecord(t, staffInput(), d) // last line without newline
	rep := NewReplayReport(e)
	if err := Replay(context.Background(), e, "long.jsonl", strings.NewReader(log), rep); err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 2 || len(rep.Warnings) != 1 || rep.Warnings[0].Line != 3 || !strings.Contains(rep.Warnings[0].Problem, "longer than") {
		t.Errorf("report %+v", rep)
	}
}

func TestReplay_ReadsGzippedArchives(t *testing.T) {
	e := replayCandidate(t)
	raw, err := os.ReadFile(auditFixture)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "audit.000000001001.log.gz")
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(raw)
	gz.Close()
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := ReplayFiles(context.Background(), e, []string{name})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 5 || len(rep.Changes) != 2 || rep.Changes[0].File != name {
		t.Errorf("gzipped replay: %+v", rep)
	}
}

func TestReplay_UnreadableFileIsAnError(t *testing.T) {
	e := replayCandidate(t)
	if _, err := ReplayFiles(context.Background(), e, []string{filepath.Join(t.TempDir(), "missing.jsonl")}); err == nil {
		t.Error("missing audit file: no error")
	}
}

// auditRecord writes an admission decision the way the gateway's audit log
// does: top-level event, input and result among other fields.
func auditRecord(t *testing.T, in Input, d Decision) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"seq": 1, "ts": "2026-03-04T09:30:00Z", "event": AuditEventDecision, "input": in, "result": d, "hash": "h"})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzParseAuditLine(f *testing.F) {
	b, err := os.ReadFile(auditFixture)
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f.Add([]byte(line))
	}
	f.Add([]byte(`{"event":"admission.decision","input":null,"result":{}}`))
	f.Add([]byte(`{"event":"admission.decision","input":{},"result":{"allow":"yes"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		d, ok, err := parseAuditLine(line)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok {
			// A usable entry converts for evaluation.
			_ = d.Input.value()
		}
	})
}
