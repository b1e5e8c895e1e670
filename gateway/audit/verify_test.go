package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	b := append(bytes.Join(lines, []byte("\n")), '\n')
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustHeader(t testing.TB, line []byte) header {
	t.Helper()
	h, err := parseHeader(line)
	if err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	return h
}

// indexOf returns the index of the first line of event after index from.
func indexOf(t testing.TB, lines [][]byte, event string, from int) int {
	t.Helper()
	for i := from; i < len(lines); i++ {
		if string(mustHeader(t, lines[i]).event) == event {
			return i
		}
	}
	t.Fatalf("no %s after line %d", event, from)
	return 0
}

// forgeLine builds a record the way anyone who knows the public format can:
// a correct hash, and a signature only if given a key.
func forgeLine(seq uint64, ts, event string, prev [hashLen]byte, members string, signer ed25519.PrivateKey) ([]byte, [hashLen]byte) {
	t, _ := time.Parse(tsLayout, ts)
	b, sum := appendRecord(nil, seq, t, event, "", &prev, []byte(members), signer)
	return bytes.TrimSuffix(b, []byte("\n")), sum
}

// relink rewrites lines[from:] so that they chain after lines[from-1]:
// seq, prev and hash recomputed, the attack of someone who can write the
// file but holds no key. With signer, checkpoints are re-signed too (with
// keyID written in them).
func relink(t testing.TB, lines [][]byte, from int, signer ed25519.PrivateKey, keyID string) {
	t.Helper()
	prev := mustHeader(t, lines[from-1])
	seq, hash := prev.seq, prev.hash
	for i := from; i < len(lines); i++ {
		h := mustHeader(t, lines[i])
		afterPrev := bytes.Index(lines[i], []byte(`,"prev":"`)) + len(`,"prev":"`) + 2*hashLen + 1
		members := string(h.hashed[afterPrev:])
		var key ed25519.PrivateKey
		if h.isCheckpoint() {
			members = members[:len(members)-sigMemberLen]
			if signer != nil {
				key = signer
				cp, _ := parseCheckpointMembers(h.hashed)
				members = strings.Replace(members, cp.KeyID, keyID, 1)
			} else {
				members += string(h.hashed[len(h.hashed)-sigMemberLen:]) // keep the old signature
			}
		}
		lines[i], hash = forgeLine(seq+1, string(h.ts), string(h.event), hash, strings.TrimPrefix(members, ","), key)
		seq++
	}
}

func TestVerify_CatchesTampering(t *testing.T) {
	dir := t.TempDir()
	path := writeFixture(t, dir, 5)
	pristine := readLines(t, path)
	attacker := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	ourKeyID := KeyID(testKey().Public().(ed25519.PublicKey))

	// admit is a record in the middle, followed by another ordinary record.
	admit := indexOf(t, pristine, EventLobbyAdmit, 0)
	for mustHeader(t, pristine[admit]).isCheckpoint() || mustHeader(t, pristine[admit+1]).isCheckpoint() {
		admit++
	}
	seqAt := func(i int) uint64 { return mustHeader(t, pristine[i]).seq }
	cpAfter := indexOf(t, pristine, EventCheckpoint, admit)

	cases := []struct {
		name    string
		tamper  func(lines [][]byte) [][]byte
		opts    VerifyOptions
		kind    ProblemKind
		seq     uint64
		detail  string
		rawTail int // cut this many bytes from the file instead of writing lines
	}{
		{name: "change one byte of a member",
			tamper: func(l [][]byte) [][]byte {
				l[admit] = bytes.Replace(l[admit], []byte(`"room":"standup"`), []byte(`"room":"standuq"`), 1)
				return l
			},
			kind: ProblemModified, seq: seqAt(admit), detail: "does not match its hash"},
		{name: "change one byte of the hash",
			tamper: func(l [][]byte) [][]byte {
				b := l[admit]
				i := len(b) - 3
				b[i] = map[bool]byte{true: '1', false: '0'}[b[i] == '0']
				return l
			},
			kind: ProblemModified, seq: seqAt(admit), detail: "does not match its hash"},
		{name: "change a byte of the seq",
			tamper: func(l [][]byte) [][]byte {
				l[admit] = bytes.Replace(l[admit], fmt.Appendf(nil, `{"seq":%d,`, seqAt(admit)), fmt.Appendf(nil, `{"seq":%d,`, seqAt(admit)+10), 1)
				return l
			},
			kind: ProblemModified, seq: seqAt(admit) + 10, detail: "does not match its hash"},
		{name: "rewrite a record and its hash",
			tamper: func(l [][]byte) [][]byte {
				h := mustHeader(t, l[admit])
				l[admit], _ = forgeLine(h.seq, string(h.ts), string(h.event), h.prev, `"room":"standup","actor":"mallory@bombers.example","target":"bob@partner.example"`, nil)
				return l
			},
			kind: ProblemModified, seq: seqAt(admit + 1), detail: "prev does not match"},
		{name: "delete a record",
			tamper: func(l [][]byte) [][]byte { return append(l[:admit:admit], l[admit+1:]...) },
			kind:   ProblemDeleted, seq: seqAt(admit + 1), detail: fmt.Sprintf("records seq %d–%d are missing", seqAt(admit), seqAt(admit))},
		{name: "delete a record and re-link the rest",
			tamper: func(l [][]byte) [][]byte {
				l = append(l[:admit:admit], l[admit+1:]...)
				relink(t, l, admit, nil, "")
				return l
			},
			kind: ProblemBadSignature, seq: seqAt(cpAfter) - 1, detail: "does not verify"},
		{name: "swap two records",
			tamper: func(l [][]byte) [][]byte { l[admit], l[admit+1] = l[admit+1], l[admit]; return l },
			kind:   ProblemReordered, seq: seqAt(admit + 1), detail: fmt.Sprintf("seq %d comes before seq %d", seqAt(admit+1), seqAt(admit))},
		{name: "insert a copy of a record",
			tamper: func(l [][]byte) [][]byte {
				return append(l[:admit+1:admit+1], append([][]byte{bytes.Clone(l[admit])}, l[admit+1:]...)...)
			},
			kind: ProblemInserted, seq: seqAt(admit), detail: "appears again"},
		{name: "insert a forged record that does not link",
			tamper: func(l [][]byte) [][]byte {
				f, _ := forgeLine(seqAt(admit)+1, "2026-03-02T09:01:30.000000000Z", EventLobbyAdmit, [hashLen]byte{1}, `"room":"standup","actor":"alice@example.com","target":"mallory@bombers.example"`, nil)
				return append(l[:admit+1:admit+1], append([][]byte{f}, l[admit+1:]...)...)
			},
			kind: ProblemInserted, seq: seqAt(admit) + 1, detail: "the next record does"},
		{name: "insert a forged record linked into the chain",
			tamper: func(l [][]byte) [][]byte {
				h := mustHeader(t, l[admit])
				f, _ := forgeLine(h.seq+1, string(h.ts), EventLobbyAdmit, h.hash, `"room":"standup","actor":"alice@example.com","target":"mallory@bombers.example"`, nil)
				return append(l[:admit+1:admit+1], append([][]byte{f}, l[admit+1:]...)...)
			},
			kind: ProblemInserted, seq: seqAt(admit) + 1, detail: "appears again"},
		{name: "insert a forged record and re-link the rest",
			tamper: func(l [][]byte) [][]byte {
				h := mustHeader(t, l[admit])
				f, _ := forgeLine(h.seq+1, string(h.ts), EventLobbyAdmit, h.hash, `"room":"standup","actor":"alice@example.com","target":"mallory@bombers.example"`, nil)
				l = append(l[:admit+1:admit+1], append([][]byte{f}, l[admit+1:]...)...)
				relink(t, l, admit+2, nil, "")
				return l
			},
			kind: ProblemInserted, detail: "records were inserted"},
		{name: "replace a record with a forged one and re-link the rest",
			tamper: func(l [][]byte) [][]byte {
				h := mustHeader(t, l[admit])
				l[admit], _ = forgeLine(h.seq, string(h.ts), EventLobbyAdmit, h.prev, `"room":"standup","actor":"alice@example.com","target":"mallory@bombers.example"`, nil)
				relink(t, l, admit+1, nil, "")
				return l
			},
			kind: ProblemBadSignature, seq: seqAt(cpAfter), detail: "does not verify"},
		{name: "insert a line that is not a record",
			tamper: func(l [][]byte) [][]byte {
				return append(l[:admit+1:admit+1], append([][]byte{[]byte(`{"note":"hello"}`)}, l[admit+1:]...)...)
			},
			kind: ProblemInserted, detail: "not part of the chain"},
		{name: "replace a checkpoint signature",
			tamper: func(l [][]byte) [][]byte {
				other := mustHeader(t, l[0]) // genesis checkpoint
				cp := mustHeader(t, l[cpAfter])
				l[cpAfter] = bytes.Replace(l[cpAfter], []byte(base64.StdEncoding.EncodeToString(cp.sig)), []byte(base64.StdEncoding.EncodeToString(other.sig)), 1)
				return l
			},
			kind: ProblemBadSignature, seq: seqAt(cpAfter), detail: "does not verify"},
		{name: "rewrite and re-sign with another key",
			tamper: func(l [][]byte) [][]byte {
				l[admit] = bytes.Replace(l[admit], []byte("alice@example.com"), []byte("eve@example.com"), 1)
				relink(t, l, admit, attacker, KeyID(attacker.Public().(ed25519.PublicKey)))
				return l
			},
			kind: ProblemBadSignature, seq: seqAt(cpAfter), detail: "not among the trusted keys"},
		{name: "rewrite and re-sign with another key claiming ours",
			tamper: func(l [][]byte) [][]byte {
				l[admit] = bytes.Replace(l[admit], []byte("alice@example.com"), []byte("eve@example.com"), 1)
				relink(t, l, admit, attacker, ourKeyID)
				return l
			},
			kind: ProblemBadSignature, seq: seqAt(cpAfter), detail: "does not verify with key " + ourKeyID},
		{name: "remove the last checkpoints and re-link",
			tamper: func(l [][]byte) [][]byte {
				var kept [][]byte
				for i, line := range l {
					if i <= admit || !mustHeader(t, line).isCheckpoint() {
						kept = append(kept, line)
					}
				}
				relink(t, kept, admit+1, nil, "")
				return kept
			},
			kind: ProblemDeleted, detail: "a checkpoint was removed"},
		{name: "cut whole records off a sealed log",
			tamper: func(l [][]byte) [][]byte { return l[:len(l)-3] },
			opts:   VerifyOptions{RequireSealed: true},
			kind:   ProblemTruncated, seq: seqAt(len(pristine) - 4), detail: "without the checkpoint written on close"},
		{name: "cut in the middle of the last record", rawTail: 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dir + "/tampered.log"
			if tc.rawTail > 0 {
				b, _ := os.ReadFile(path)
				os.WriteFile(p, b[:len(b)-tc.rawTail], 0o600)
			} else {
				lines := make([][]byte, len(pristine))
				for i := range pristine {
					lines[i] = bytes.Clone(pristine[i])
				}
				tampered := tc.tamper(lines)
				if equalLines(tampered, pristine) {
					t.Fatal("the tampering changed nothing")
				}
				writeLines(t, p, tampered)
			}
			res := verifyFiles(t, []string{p}, tc.opts)
			if tc.kind == "" {
				if res.Problem != nil || res.Torn == nil {
					t.Fatalf("want a torn tail and no problem, got problem=%v torn=%v", res.Problem, res.Torn)
				}
				if want := seqAt(len(pristine) - 2); res.Torn.AfterSeq != want || res.LastSeq != want {
					t.Fatalf("torn after seq %d (last verified %d), want %d", res.Torn.AfterSeq, res.LastSeq, want)
				}
				return
			}
			if res.Problem == nil {
				t.Fatalf("tampering not detected (records=%d sealed=%v)", res.Records, res.Sealed)
			}
			if res.Problem.Kind != tc.kind || (tc.seq != 0 && res.Problem.Seq != tc.seq) || !strings.Contains(res.Problem.Detail, tc.detail) {
				t.Fatalf("got %q\nwant kind %q seq %d detail containing %q", res.Problem.Error(), tc.kind, tc.seq, tc.detail)
			}
		})
	}
}

func TestVerify_PristineFixtureIsIntact(t *testing.T) {
	path := writeFixture(t, t.TempDir(), 5)
	res := verifyFiles(t, []string{path}, VerifyOptions{RequireSealed: true})
	if !res.Intact() || !res.Sealed || res.StartsMidChain || res.Unsigned != 0 {
		t.Fatalf("%+v problem=%v", res, res.Problem)
	}
}

func TestVerify_CutAtRecordBoundaryOfALiveLogIsOnlyUnsealed(t *testing.T) {
	// The documented limit: without RequireSealed, records cut after the
	// last checkpoint cannot be told from a log still being written.
	path := writeFixture(t, t.TempDir(), 5)
	lines := readLines(t, path)
	writeLines(t, path, lines[:len(lines)-2])
	res := verifyFiles(t, []string{path}, VerifyOptions{})
	if !res.Intact() || res.Sealed || res.Unsigned == 0 {
		t.Fatalf("want intact, unsealed, with unsigned records; got %+v problem=%v", res, res.Problem)
	}
}

func TestVerify_RotatedFileCutShort(t *testing.T) {
	path := writeRotatedLog(t, 300)
	files := logFiles(t, path)
	lines := readLines(t, files[1])
	writeLines(t, files[1], lines[:len(lines)-2])
	res := verifyFiles(t, files, VerifyOptions{})
	if res.Problem == nil || res.Problem.Kind != ProblemTruncated || res.Problem.File != files[1] {
		t.Fatalf("problem = %v, want truncated in %s", res.Problem, files[1])
	}
}

func writeRotatedLog(t testing.TB, n int) string {
	t.Helper()
	l := openTestLog(t, Options{MaxFileBytes: 6 << 10, CheckpointEvery: 25})
	for i := range n {
		if err := l.Record(context.Background(), EventRoomLock, zapInt("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return l.opts.Path
}

func TestVerify_NeedsAKey(t *testing.T) {
	path := writeFixture(t, t.TempDir(), 5)
	if _, err := Verify(context.Background(), []string{path}, VerifyOptions{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
}

func TestVerify_OldKeyStillVerifiesAfterKeyChange(t *testing.T) {
	path := writeFixture(t, t.TempDir(), 5)
	newKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	oldPub := testKey().Public().(ed25519.PublicKey)
	l := openTestLog(t, Options{Path: path, SigningKey: newKey, TrustedKeys: []ed25519.PublicKey{oldPub}})
	if err := l.Record(context.Background(), EventRoomLock); err != nil {
		t.Fatal(err)
	}
	l.Close()
	keys, err := LoadPublicKeys(path + ".pub")
	if err != nil || len(keys) != 2 {
		t.Fatalf("pub file keeps %d keys (err %v), want both", len(keys), err)
	}
	files := logFiles(t, path)
	if res := verifyFiles(t, files, VerifyOptions{Keys: keys}); !res.Intact() {
		t.Fatal(res.Problem)
	}
	res := verifyFiles(t, files, VerifyOptions{Keys: keys[1:]})
	if res.Problem == nil || res.Problem.Kind != ProblemBadSignature {
		t.Fatalf("only the new key: problem = %v, want bad signature on the old checkpoints", res.Problem)
	}
}

func TestParseHeader_HashIsOverExactBytes(t *testing.T) {
	// The spec in docs/audit.md, computed independently of appendRecord.
	line, _ := forgeLine(1, "2026-03-02T09:00:00.000000000Z", "room.lock", zeroHash, `"room":"r"`, nil)
	body := `{"seq":1,"ts":"2026-03-02T09:00:00.000000000Z","event":"room.lock","prev":"` + strings.Repeat("0", 64) + `","room":"r"}`
	sum := sha256.Sum256([]byte(body))
	want := body[:len(body)-1] + `,"hash":"` + hex.EncodeToString(sum[:]) + `"}`
	if string(line) != want {
		t.Fatalf("got  %s\nwant %s", line, want)
	}
}

func equalLines(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
