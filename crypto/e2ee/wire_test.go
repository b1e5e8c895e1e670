package e2ee

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func publishedVectors(t *testing.T) *vectors {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// corrupt returns a copy of b with f applied.
func corrupt(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }

func TestParsers_RefuseHostileInputNamingTheField(t *testing.T) {
	v := publishedVectors(t)
	cred := v.Devices[0].Credential
	roster3 := v.Rosters[2].Encoding
	// Offsets inside the roster tbs (after its 4-byte length): version 1, room, instance, epoch, issued, prev.
	tbsStart := 4
	roomLen := int(roster3[tbsStart+1])<<8 | int(roster3[tbsStart+2])
	instStart := tbsStart + 3 + roomLen
	instLen := int(roster3[instStart])<<8 | int(roster3[instStart+1])
	epochAt := instStart + 2 + instLen
	lockedAt := epochAt + 8 + 8 + 32
	membersAt := lockedAt + 1 + 3

	cases := []struct {
		name  string
		parse func([]byte) error
		input []byte
		field string
	}{
		{"credential with trailing byte", parseCred, append(bytes.Clone(cred), 0), "credential.end"},
		{"credential truncated", parseCred, cred[:len(cred)-1], "credential.signature"},
		{"credential of version 1", parseCred, corrupt(cred, func(b []byte) []byte { b[2] = 1; return b }), "credential.version"},
		{"key package truncated", parseKP, v.Devices[0].KeyPackage[:len(v.Devices[0].KeyPackage)-1], "key_package.signature"},
		{"key package with trailing byte", parseKP, append(bytes.Clone(v.Devices[0].KeyPackage), 0), "key_package.end"},
		{"empty credential", parseCred, nil, "credential.tbs"},
		{"roster of epoch 0", parseRoster, corrupt(roster3, func(b []byte) []byte { copy(b[epochAt:], make([]byte, 8)); return b }), "roster.epoch"},
		{"roster lock flag 2", parseRoster, corrupt(roster3, func(b []byte) []byte { b[lockedAt] = 2; return b }), "roster.locked"},
		{"roster members unsorted", parseRoster, corrupt(roster3, func(b []byte) []byte {
			first := bytes.Clone(b[membersAt : membersAt+32])
			copy(b[membersAt:], b[membersAt+32:membersAt+64])
			copy(b[membersAt+32:], first)
			return b
		}), "roster.members"},
		{"roster member duplicated", parseRoster, corrupt(roster3, func(b []byte) []byte {
			copy(b[membersAt+32:], b[membersAt:membersAt+32])
			return b
		}), "roster.members"},
		{"roster room not UTF-8", parseRoster, corrupt(roster3, func(b []byte) []byte { b[tbsStart+3] = 0xff; return b }), "roster.room"},
		{"registration truncated", parseReg, v.Devices[0].Registration[:40], "registration.signing_key"},
		{"challenge with trailing bytes", parseChallenge, append(bytes.Clone(v.Devices[0].Challenge), 1, 2), "challenge.end"},
		{"commit with a truncated header", parseCommitErr, []byte{0, 1, 0, 0, 0, 0, 0}, "commit"},
		{"sealed secrets list truncated", parseSealedErr, []byte{0, 0, 0, 9, 0, 5}, "sealed_secrets.secrets"},
		{"two sealed secrets", parseSealedErr, []byte{0, 0, 0, 4, 0, 0, 0, 0}, "sealed_secrets.secrets"},
		{"roster update with short list", parseUpdateErr, append(make([]byte, 8), 0, 0, 0, 1), "roster_update.rosters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.input)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func parseCred(b []byte) error      { _, err := ParseCredential(b); return err }
func parseRoster(b []byte) error    { _, err := ParseRoster(b); return err }
func parseReg(b []byte) error       { _, err := ParseRegistration(b); return err }
func parseChallenge(b []byte) error { _, err := ParseChallenge(b); return err }
func parseCommitErr(b []byte) error { _, err := parseCommit(b); return err }
func parseSealedErr(b []byte) error { _, err := parseSealedSecrets(b); return err }
func parseKP(b []byte) error        { _, err := ParseKeyPackage(b); return err }
func parseUpdateErr(b []byte) error { _, err := parseRosterUpdate(b); return err }

func TestParseHash_RoundTripsAndRefusesBadHex(t *testing.T) {
	h := Hash{1, 2, 3}
	if got, err := ParseHash(h.String()); err != nil || got != h {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("zz", 32)} {
		if _, err := ParseHash(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseHash(%q) = %v", bad, err)
		}
	}
}
