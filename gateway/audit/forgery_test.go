package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// forgeLog writes n records from seq first on, linked and hashed exactly as
// the published format says, with no checkpoint: what anyone who can write
// the file and holds no key can produce.
func forgeLog(t testing.TB, path string, first uint64, n int) {
	t.Helper()
	prev := zeroHash
	if first > 1 {
		prev = [hashLen]byte{0xab} // the "previous file" is gone
	}
	var lines [][]byte
	for i := range n {
		ts := time.Date(2026, 3, 2, 9, 0, i%60, 0, time.UTC).Format(tsLayout)
		var line []byte
		line, prev = forgeLine(first+uint64(i), ts, EventAdmissionDecision, prev,
			fmt.Sprintf(`"room":"standup","subject":"mallory@bombers.example","decision":"allow","i":%d`, i), nil)
		lines = append(lines, line)
	}
	writeLines(t, path, lines)
}

// reroot re-signs a real log under signer from its genesis on, and
// publishes signer's key beside it: the attack of someone who can write
// the log directory but not read the gateway's key.
func reroot(t testing.TB, path string, signer ed25519.PrivateKey) {
	t.Helper()
	lines := readLines(t, path)
	lines[len(lines)/2] = bytes.Replace(lines[len(lines)/2], []byte("alice@example.com"), []byte("eve@example.com"), 1)
	id := KeyID(signer.Public().(ed25519.PublicKey))
	g := mustHeader(t, lines[0])
	members := string(g.hashed[bytes.Index(lines[0], []byte(`,"prev":"`))+len(`,"prev":"`)+2*hashLen+1:])
	members = strings.Replace(members[:len(members)-sigMemberLen], KeyID(testKey().Public().(ed25519.PublicKey)), id, 1)
	lines[0], _ = forgeLine(1, string(g.ts), EventCheckpoint, zeroHash, strings.TrimPrefix(members, ","), signer)
	relink(t, lines, 1, signer, id)
	writeLines(t, path, lines)
	if err := os.WriteFile(path+".pub", encodePublicKey(signer.Public().(ed25519.PublicKey)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForgery_RefusedByVerifyAndOpen tries each way of building a log
// without the gateway's key. Verify (with the trusted key) must call it
// tampered, and Open must refuse to continue it rather than sign it.
func TestForgery_RefusedByVerifyAndOpen(t *testing.T) {
	attacker := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	cases := []struct {
		name   string
		forge  func(t *testing.T, path string)
		kind   ProblemKind
		detail string
		open   string // in Open's error
	}{
		{name: "5000 unsigned records from seq 1",
			forge: func(t *testing.T, path string) { forgeLog(t, path, 1, 5000) },
			kind:  ProblemUnsigned, detail: "not the genesis checkpoint", open: "record seq 1 is not the genesis checkpoint"},
		{name: "two unsigned records from seq 1",
			forge: func(t *testing.T, path string) { forgeLog(t, path, 1, 2) },
			kind:  ProblemUnsigned, detail: "not the genesis checkpoint", open: "record seq 1 is not the genesis checkpoint"},
		{name: "unsigned records posing as the tail of a rotated-away log",
			forge: func(t *testing.T, path string) { forgeLog(t, path, 5001, 40) },
			kind:  ProblemUnsigned, detail: "no checkpoint signed by a trusted key", open: "no rotated file precedes it"},
		{name: "a real log re-rooted under another key",
			forge: func(t *testing.T, path string) {
				writeFixture(t, filepath.Dir(path), 5)
				reroot(t, path, attacker)
			},
			kind: ProblemBadSignature, detail: "not among the trusted keys", open: "not a trusted key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			tc.forge(t, path)
			before, _ := os.ReadFile(path)

			res := verifyFiles(t, []string{path}, VerifyOptions{RequireSealed: true})
			if res.Problem == nil || res.Problem.Kind != tc.kind || !strings.Contains(res.Problem.Detail, tc.detail) {
				t.Fatalf("verify: problem = %v, want %s containing %q", res.Problem, tc.kind, tc.detail)
			}

			_, err := Open(context.Background(), Options{Path: path, SigningKey: testKey()})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.open) || !strings.Contains(err.Error(), "meetguard audit verify") {
				t.Fatalf("Open of a forged log: err = %v, want ErrCorrupt naming %q and what to run", err, tc.open)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("Open wrote to a log it refused")
			}
			// A restart does not change the verdict either.
			res = verifyFiles(t, []string{path}, VerifyOptions{RequireSealed: true})
			if res.Problem == nil {
				t.Fatal("forged log verifies after a refused restart")
			}
		})
	}
}

// TestOpen_ResumesAnActiveFileWithoutCheckpointAfterRotation: the one
// legitimate tail without a checkpoint of its own, a new active file cut
// short by a crash after a rotation, is covered by the rotation checkpoint.
func TestOpen_ResumesAnActiveFileWithoutCheckpointAfterRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTestLog(t, Options{Path: path, MaxFileBytes: 4 << 10, CheckpointEvery: 50, CheckpointInterval: time.Hour})
	for i := 0; len(logFiles(t, path)) < 2; i++ {
		if err := l.Record(context.Background(), EventRoomLock, zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := l.Record(context.Background(), EventRoomUnlock, zap.Int("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	simulateCrash(t, l)
	if lines := readLines(t, path); mustHeader(t, lines[0]).seq == 1 || len(eventsOf(readAll(t, path), EventCheckpoint)) != 0 {
		t.Fatalf("setup: want an active file after rotation with no checkpoint, got %d lines", len(lines))
	}

	// A copy whose predecessor lost its rotation checkpoint is refused.
	cut := filepath.Join(t.TempDir(), "audit.log")
	for _, f := range logFiles(t, path) {
		b, _ := os.ReadFile(f)
		os.WriteFile(filepath.Join(filepath.Dir(cut), filepath.Base(f)), b, 0o600)
	}
	rotated, _ := rotatedFiles(cut)
	lines := readLines(t, rotated[len(rotated)-1])
	writeLines(t, rotated[len(rotated)-1], lines[:len(lines)-1])
	if _, err := Open(context.Background(), Options{Path: cut, SigningKey: testKey()}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open after cutting the rotation checkpoint: err = %v, want ErrCorrupt", err)
	}

	l2 := openTestLog(t, Options{Path: path, MaxFileBytes: 4 << 10, CheckpointEvery: 50})
	l2.Close()
	if res := verifyFiles(t, logFiles(t, path), VerifyOptions{RequireSealed: true}); !res.Intact() {
		t.Fatalf("after resume: %v", res.Problem)
	}
}

// TestVerify_MidChainStartNeedsATrustedCheckpoint: rotated-away files
// may be missing from the start, but the rest must carry a checkpoint.
func TestVerify_MidChainStartNeedsATrustedCheckpoint(t *testing.T) {
	path := writeRotatedLog(t, 300)
	files := logFiles(t, path)
	res := verifyFiles(t, files[1:], VerifyOptions{RequireSealed: true})
	if !res.Intact() || !res.StartsMidChain || res.Checkpoints == 0 {
		t.Fatalf("tail of a rotated log: %+v problem=%v", res, res.Problem)
	}
	// The same files with every checkpoint dropped and the chain re-linked.
	var kept [][]byte
	for _, f := range files[1:] {
		for _, line := range readLines(t, f) {
			if !mustHeader(t, line).isCheckpoint() {
				kept = append(kept, line)
			}
		}
	}
	relinked := append([][]byte{kept[0]}, kept...)
	relink(t, relinked, 1, nil, "")
	p := filepath.Join(t.TempDir(), "audit.log")
	writeLines(t, p, relinked[1:])
	res = verifyFiles(t, []string{p}, VerifyOptions{})
	if res.Problem == nil || res.Problem.Kind != ProblemUnsigned {
		t.Fatalf("mid-chain log without checkpoints: problem = %v, want unsigned", res.Problem)
	}
}
