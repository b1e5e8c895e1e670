package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeedLog is the fixture log, valid and sealed.
func fuzzSeedLog(f *testing.F) []byte {
	b, err := os.ReadFile(writeFixture(f, f.TempDir(), 5))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzParseHeader: any bytes; the parser must not panic, and whatever it
// accepts must be self-consistent.
func FuzzParseHeader(f *testing.F) {
	for _, line := range bytes.Split(fuzzSeedLog(f), []byte("\n")) {
		f.Add(line)
	}
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":2,"ts":"2026-03-02T09:00:00.000000000Z","event":"lobby.knock","prev":"` + strings.Repeat("0", 64) + `","node":"gw-1","room":"r","hash":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"seq":2,"ts":"2026-03-02T09:00:00.000000000Z","event":"lobby.knock","prev":"` + strings.Repeat("0", 64) + `","node":7,"hash":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"seq":01,"ts":"2026-03-02T09:00:00.000000000Z","event":"x","prev":"00","hash":"00"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		h, err := parseHeader(line)
		if err != nil {
			return
		}
		if h.seq == 0 || !validEventName(h.event) || len(h.hashed) >= len(line) {
			t.Fatalf("accepted an inconsistent record: %+v", h)
		}
		if h.isCheckpoint() && (len(h.sig) != ed25519.SignatureSize || len(h.signed) >= len(h.hashed)) {
			t.Fatalf("checkpoint without a usable signature: %q", line)
		}
		if e, err := ParseEntry(line); err == nil && (e.Seq != h.seq || e.Event != string(h.event)) {
			t.Fatalf("ParseEntry and parseHeader disagree on %q", line)
		}
	})
}

// FuzzVerify_AnyByteChangeIsDetected: changing, removing or inserting
// bytes anywhere in a valid log must never leave it "intact".
func FuzzVerify_AnyByteChangeIsDetected(f *testing.F) {
	f.Add(uint(0), byte('x'), uint8(0))
	f.Add(uint(200), byte('0'), uint8(1))
	f.Add(uint(1000), byte('\n'), uint8(2))
	pub := testKey().Public().(ed25519.PublicKey)
	orig := fuzzSeedLog(f)
	f.Fuzz(func(t *testing.T, pos uint, b byte, op uint8) {
		i := int(pos % uint(len(orig)))
		var mutated []byte
		switch op % 3 {
		case 0: // replace
			if orig[i] == b {
				return
			}
			mutated = bytes.Clone(orig)
			mutated[i] = b
		case 1: // delete
			mutated = append(bytes.Clone(orig[:i]), orig[i+1:]...)
		case 2: // insert
			mutated = append(append(bytes.Clone(orig[:i]), b), orig[i:]...)
		}
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, mutated, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := Verify(context.Background(), []string{path}, VerifyOptions{Keys: []ed25519.PublicKey{pub}, RequireSealed: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Intact() {
			t.Fatalf("op %d of byte %q at %d went undetected", op%3, b, i)
		}
	})
}

// FuzzVerify_ArbitraryFile: whatever the file holds, Verify and the
// readers return without panicking.
func FuzzVerify_ArbitraryFile(f *testing.F) {
	f.Add(fuzzSeedLog(f))
	f.Add([]byte("{}\n{\"seq\":1}\n"))
	f.Add([]byte{})
	pub := testKey().Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := Verify(context.Background(), []string{path}, VerifyOptions{Keys: []ed25519.PublicKey{pub}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Intact() && res.Records > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			t.Fatal("a file without a final newline verified as intact")
		}
		ReadEntries(context.Background(), []string{path}, func(*Entry) error { return nil })
		BuildReport(context.Background(), []string{path}, ReportOptions{Room: "standup"})
		if res.Intact() && res.Records > 0 && res.Checkpoints == 0 {
			t.Fatal("records no trusted checkpoint covers verified as intact")
		}
		readChainTail(path, map[string]ed25519.PublicKey{KeyID(pub): pub})
	})
}
