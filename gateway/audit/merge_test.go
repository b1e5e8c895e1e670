package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// nodeLogs writes the logs of three nodes as a cluster would: one room, the
// joins spread over the nodes, the clocks interleaved (node i's records at
// start + i·1s + k·3s). Node gw-a rotates often, so its chain spans files.
// It returns every file, shuffled, and the nodes' log paths.
func nodeLogs(t *testing.T, perNode int) (files []string, paths map[string]string) {
	t.Helper()
	start, _ := time.Parse(time.RFC3339, fixtureStart)
	paths = map[string]string{}
	for i, node := range []string{"gw-a", "gw-b", "gw-c"} {
		dir := filepath.Join(t.TempDir(), node)
		path := filepath.Join(dir, "audit.log")
		clock := &fakeClock{now: start.Add(time.Duration(i) * time.Second)}
		opts := Options{Path: path, Node: node, CheckpointEvery: 4, CheckpointInterval: 1000 * time.Hour, Clock: clock.Now}
		if node == "gw-a" {
			opts.MaxFileBytes = 2 << 10
		}
		l := openTestLog(t, opts)
		for k := range perNode {
			clock.Set(start.Add(time.Duration(i)*time.Second + time.Duration(k)*3*time.Second))
			subject := fmt.Sprintf("p%d@example.com", k*3+i)
			if err := l.Record(context.Background(), EventAdmissionDecision,
				decision("standup", subject, DecisionAllow, "participant", []string{"org_member"}, fmt.Sprintf("d-%s-%d", node, k))...); err != nil {
				t.Fatal(err)
			}
		}
		clock.Set(start.Add(time.Hour))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		paths[node] = path
		files = append(files, logFiles(t, path)...)
	}
	// Shuffled deterministically: the tools must not depend on the order.
	slices.Reverse(files)
	return files, paths
}

func TestMerged_ThreeNodesTellOneTimeOrderedStory(t *testing.T) {
	files, paths := nodeLogs(t, 12)
	if n := len(logFiles(t, paths["gw-a"])); n < 3 {
		t.Fatalf("gw-a wrote %d files; the test wants a rotated chain", n)
	}
	nodes, err := GroupByNode(files)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, nl := range nodes {
		names = append(names, nl.Node)
		if want := logFiles(t, paths[nl.Node]); len(nl.Files) != len(want) {
			t.Errorf("node %s: %d files, want %d", nl.Node, len(nl.Files), len(want))
		}
	}
	if !slices.Equal(names, []string{"gw-a", "gw-b", "gw-c"}) {
		t.Fatalf("nodes %v", names)
	}

	var got []*Entry
	st, err := ReadMerged(context.Background(), files, func(e *Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil || len(st.Skipped) > 0 || st.Torn {
		t.Fatalf("err=%v stats=%+v", err, st)
	}
	lastSeq := map[string]uint64{}
	var subjects []string
	for i, e := range got {
		if e.Node == "" {
			t.Fatalf("record %s#%d has no node", e.File, e.Seq)
		}
		if i > 0 && e.Time.Before(got[i-1].Time) {
			t.Errorf("record %d (%s#%d at %s) comes after %s#%d at %s", i, e.Node, e.Seq, e.Time, got[i-1].Node, got[i-1].Seq, got[i-1].Time)
		}
		if e.Seq <= lastSeq[e.Node] {
			t.Errorf("node %s: seq %d after %d", e.Node, e.Seq, lastSeq[e.Node])
		}
		lastSeq[e.Node] = e.Seq
		if e.Event == EventAdmissionDecision {
			subjects = append(subjects, e.Str(FieldSubject))
		}
	}
	// The joins were p0 (gw-a), p1 (gw-b), p2 (gw-c), p3 (gw-a), …: the
	// merged story has them in that order.
	for i, s := range subjects {
		if want := fmt.Sprintf("p%d@example.com", i); s != want {
			t.Fatalf("admission %d is %s, want %s (merged order %v)", i, s, want, subjects)
		}
	}
	if len(subjects) != 36 {
		t.Fatalf("%d admissions, want 36", len(subjects))
	}

	// Stopping early stops every chain's reader.
	n := 0
	m, err := NewMergedReader(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range m.Entries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 5 {
			break
		}
	}
}

func TestMerged_ClockSteppingBackKeepsEachNodesOrder(t *testing.T) {
	start, _ := time.Parse(time.RFC3339, fixtureStart)
	var files []string
	for _, node := range []string{"gw-a", "gw-b"} {
		clock := &fakeClock{now: start}
		path := filepath.Join(t.TempDir(), "audit.log")
		l := openTestLog(t, Options{Path: path, Node: node, CheckpointInterval: 1000 * time.Hour, Clock: clock.Now})
		for k, off := range []int{10, 20, 5, 30} { // gw-x's clock steps back after its second record
			clock.Set(start.Add(time.Duration(off) * time.Second))
			if err := l.Record(context.Background(), EventLobbyKnock, zap.String(FieldRoom, "r"), zap.String(FieldSubject, fmt.Sprintf("%s-%d", node, k))); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		files = append(files, path)
	}
	last := map[string]uint64{}
	if _, err := ReadMerged(context.Background(), files, func(e *Entry) error {
		if e.Seq <= last[e.Node] {
			t.Errorf("node %s: seq %d after %d", e.Node, e.Seq, last[e.Node])
		}
		last[e.Node] = e.Seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyNodes_EachChainIsVerifiedOnItsOwn: every node's chain is
// verified separately, and tampering with one node's log is named with
// that node while the others stay intact. Given all nodes' files at once,
// Verify alone cannot check them at all (they all start at seq 1).
func TestVerifyNodes_EachChainIsVerifiedOnItsOwn(t *testing.T) {
	keys := []ed25519.PublicKey{testKey().Public().(ed25519.PublicKey)}
	ctx := context.Background()

	files, _ := nodeLogs(t, 12)
	res, err := VerifyNodes(ctx, files, VerifyOptions{Keys: keys, RequireSealed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d chains, want 3", len(res))
	}
	for _, r := range res {
		if !r.Intact() || !r.Sealed || r.StartsMidChain || r.FirstSeq != 1 {
			t.Errorf("node %s: %+v (problem %v)", r.Node, r.VerifyResult, r.Problem)
		}
	}
	if one := verifyFiles(t, files, VerifyOptions{}); one.Problem == nil || one.Problem.Kind != ProblemInserted {
		t.Fatalf("one chain of all nodes' files: problem %v, want inserted (why VerifyNodes exists)", one.Problem)
	}

	// lineOf returns the index of the first admission in a file.
	lineOf := func(lines [][]byte) int {
		for i, l := range lines {
			if bytes.Contains(l, []byte(`"event":"admission.decision"`)) {
				return i
			}
		}
		t.Fatal("no admission")
		return -1
	}
	attacks := []struct {
		name   string
		node   string
		tamper func(t *testing.T, paths map[string]string)
		want   ProblemKind
	}{
		{"record deleted from one node's log", "gw-b", func(t *testing.T, paths map[string]string) {
			lines := readLines(t, paths["gw-b"])
			i := lineOf(lines)
			writeLines(t, paths["gw-b"], slices.Delete(lines, i, i+1))
		}, ProblemDeleted},
		{"another node's record spliced in", "gw-c", func(t *testing.T, paths map[string]string) {
			// A genuine, signed-over admission from gw-b's chain copied
			// into gw-c's: the record is real, but not gw-c's.
			donor := readLines(t, paths["gw-b"])
			lines := readLines(t, paths["gw-c"])
			i := lineOf(lines)
			writeLines(t, paths["gw-c"], slices.Insert(lines, i, donor[lineOf(donor)]))
		}, ProblemInserted},
		{"record relabelled as another node's", "gw-b", func(t *testing.T, paths map[string]string) {
			lines := readLines(t, paths["gw-b"])
			i := lineOf(lines)
			lines[i] = bytes.Replace(lines[i], []byte(`"node":"gw-b"`), []byte(`"node":"gw-a"`), 1)
			writeLines(t, paths["gw-b"], lines)
		}, ProblemModified},
		{"admission rewritten on one node", "gw-c", func(t *testing.T, paths map[string]string) {
			lines := readLines(t, paths["gw-c"])
			i := lineOf(lines)
			lines[i] = bytes.Replace(lines[i], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
			writeLines(t, paths["gw-c"], lines)
		}, ProblemModified},
		{"whole closed log of one node cut short", "gw-b", func(t *testing.T, paths map[string]string) {
			lines := readLines(t, paths["gw-b"])
			writeLines(t, paths["gw-b"], lines[:len(lines)-1])
		}, ProblemTruncated},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			files, paths := nodeLogs(t, 12)
			a.tamper(t, paths)
			res, err := VerifyNodes(ctx, files, VerifyOptions{Keys: keys, RequireSealed: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				switch {
				case r.Node == a.node && (r.Problem == nil || r.Problem.Kind != a.want):
					t.Errorf("node %s: problem %v, want %s", r.Node, r.Problem, a.want)
				case r.Node != a.node && !r.Intact():
					t.Errorf("node %s was not touched but: %v", r.Node, r.Problem)
				}
			}
			if s := NodesIntegritySummary(res, nil); !strings.Contains(s, "node "+a.node+": FAILED: "+string(a.want)) {
				t.Errorf("summary does not name the node:\n%s", s)
			}
		})
	}
}

// TestVerifyNodes_KilledNodeHasATornTailOnly: a node killed during a write
// leaves a torn tail (not tampering); the other chains verify.
func TestVerifyNodes_KilledNodeHasATornTailOnly(t *testing.T) {
	files, paths := nodeLogs(t, 6)
	b, err := os.ReadFile(paths["gw-c"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths["gw-c"], b[:len(b)-40], 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyNodes(context.Background(), files, VerifyOptions{Keys: []ed25519.PublicKey{testKey().Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Problem != nil || (r.Torn != nil) != (r.Node == "gw-c") {
			t.Errorf("node %s: problem %v torn %v", r.Node, r.Problem, r.Torn)
		}
	}
	// The reader still tells the whole story up to the tear.
	st, err := ReadMerged(context.Background(), files, func(*Entry) error { return nil })
	if err != nil || !st.Torn {
		t.Fatalf("err=%v torn=%v", err, st.Torn)
	}
}

func TestVerifyNodes_TwoNodesWithOneNodeIDAreNamed(t *testing.T) {
	var files []string
	for range 2 {
		path := filepath.Join(t.TempDir(), "audit.log")
		l := openTestLog(t, Options{Path: path, Node: "meetguard"})
		l.Close()
		files = append(files, path)
	}
	res, err := VerifyNodes(context.Background(), files, VerifyOptions{Keys: []ed25519.PublicKey{testKey().Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Problem == nil || !strings.Contains(res[0].Problem.Detail, `two chains carry node id "meetguard"`) {
		t.Fatalf("got %+v", res)
	}
}

func TestOpen_NodeIsInEveryRecordAndChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	// A log written before node ids is continued with them.
	l := openTestLog(t, Options{Path: path})
	l.Record(context.Background(), EventLobbyKnock, zap.String(FieldRoom, "r"))
	l.Close()
	l = openTestLog(t, Options{Path: path, Node: "gw-1.example_x"})
	if err := l.Record(context.Background(), EventLobbyKnock, zap.String(FieldRoom, "r")); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), EventLobbyKnock, zap.String("node", "gw-2")); !errors.Is(err, ErrReservedKey) {
		t.Fatalf("a caller's node member: %v, want ErrReservedKey", err)
	}
	l.Close()
	es := readAll(t, path)
	var nodes []string
	for _, e := range es {
		nodes = append(nodes, e.Node)
	}
	if !slices.Equal(nodes, []string{"", "", "", "", "gw-1.example_x", "gw-1.example_x", "gw-1.example_x"}) {
		t.Fatalf("nodes %q", nodes)
	}
	if res := verifyFiles(t, []string{path}, VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("%v", res.Problem)
	}

	for _, bad := range []string{"a b", `a"b`, "ü", strings.Repeat("x", 65), "a\n"} {
		_, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "audit.log"), SigningKey: testKey(), Node: bad})
		if err == nil || !strings.Contains(err.Error(), "Options.Node") {
			t.Errorf("node %q: %v", bad, err)
		}
	}
}

func TestReport_SeveralNodes(t *testing.T) {
	files, _ := nodeLogs(t, 4)
	r, err := BuildReport(context.Background(), files, ReportOptions{Room: "standup"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Nodes, []string{"gw-a", "gw-b", "gw-c"}) || len(r.Admitted) != 12 {
		t.Fatalf("nodes %v, %d admitted", r.Nodes, len(r.Admitted))
	}
	for i, a := range r.Admitted {
		if want := fmt.Sprintf("p%d@example.com", i); a.Subject != want {
			t.Fatalf("admitted %d: %s, want %s", i, a.Subject, want)
		}
	}
	res, err := VerifyNodes(context.Background(), files, VerifyOptions{Keys: []ed25519.PublicKey{testKey().Public().(ed25519.PublicKey)}})
	r.Integrity = NodesIntegritySummary(res, err)
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"from 3 nodes (gw-a, gw-b, gw-c)", "Integrity:  node gw-a: chain of", "\n            node gw-c: chain of", "gw-b#"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}

	var q bytes.Buffer
	n, _, err := Query(context.Background(), &q, files, Filter{Node: "gw-b", Event: EventAdmissionDecision}, FormatWide)
	if err != nil || n != 4 {
		t.Fatalf("query: %d, %v", n, err)
	}
	if !strings.HasPrefix(q.String(), "TIME                     NODE") || strings.Contains(q.String(), "gw-a") {
		t.Fatalf("query table:\n%s", q.String())
	}
}
