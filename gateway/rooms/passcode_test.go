package rooms_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// cheap keeps tests fast; the parameters come from the hash on Verify.
var cheap = rooms.PasscodeOptions{Params: rooms.PasscodeParams{MemoryKiB: 64, Time: 1, Threads: 1}}

func newPasscodes(t testing.TB, o rooms.PasscodeOptions) *rooms.Passcodes {
	t.Helper()
	p, err := rooms.NewPasscodes(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasscode_VerifiesReferenceImplementationVectors(t *testing.T) {
	f, err := os.Open("testdata/argon2id_vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := newPasscodes(t, rooms.PasscodeOptions{})
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 {
			t.Fatalf("argon2id_vectors.tsv:%d: want 3 tab-separated fields", line)
		}
		ok, err := p.Verify(t.Context(), fields[1], fields[0])
		if err != nil || ok != (fields[2] == "true") {
			t.Errorf("argon2id_vectors.tsv:%d: Verify(%q) = %v, %v; want %s", line, fields[0], ok, err, fields[2])
		}
		n++
	}
	if n == 0 {
		t.Fatal("no vectors")
	}
}

func TestPasscode_HashIsSaltedPHCAndVerifies(t *testing.T) {
	p := newPasscodes(t, rooms.PasscodeOptions{})
	ctx := t.Context()
	h1, err := p.Hash(ctx, "424242")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := p.Hash(ctx, "424242")
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h1) || h1 == h2 {
		t.Fatalf("hashes %q, %q: want PHC argon2id with the default parameters and distinct salts", h1, h2)
	}
	if strings.Contains(h1, "424242") {
		t.Fatal("the hash contains the passcode")
	}
	for guess, want := range map[string]bool{"424242": true, "424243": false, "": false, "4242420": false, " 424242": false} {
		if ok, err := p.Verify(ctx, h1, guess); err != nil || ok != want {
			t.Errorf("Verify(%q) = %v, %v; want %v", guess, ok, err, want)
		}
	}
	if err := rooms.ValidatePasscodeHash(h1); err != nil {
		t.Fatal(err)
	}
}

func TestPasscode_HostileHashesAreRejectedBeforeHashing(t *testing.T) {
	p := newPasscodes(t, cheap)
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	cases := map[string]string{
		"empty":              "",
		"plaintext":          "424242",
		"argon2i":            strings.Replace(good, "argon2id", "argon2i", 1),
		"argon2d":            strings.Replace(good, "argon2id", "argon2d", 1),
		"old version":        strings.Replace(good, "v=19", "v=16", 1),
		"no version":         strings.Replace(good, "$v=19", "", 1),
		"leading zero":       strings.Replace(good, "m=64", "m=064", 1),
		"plus sign":          strings.Replace(good, "t=1", "t=+1", 1),
		"params reordered":   strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		"extra param":        strings.Replace(good, "p=1", "p=1,k=2", 1),
		"4 GiB memory":       strings.Replace(good, "m=64", "m=4194304", 1),
		"memory overflow":    strings.Replace(good, "m=64", "m=99999999999", 1),
		"zero time":          strings.Replace(good, "t=1", "t=0", 1),
		"1000 passes":        strings.Replace(good, "t=1", "t=1000", 1),
		"zero lanes":         strings.Replace(good, "p=1", "p=0", 1),
		"255 lanes":          strings.Replace(good, "p=1", "p=255", 1),
		"padded salt":        strings.Replace(good, "c29tZXNhbHQ", "c29tZXNhbHQ=", 1),
		"short salt":         strings.Replace(good, "c29tZXNhbHQ", "c29t", 1),
		"url alphabet key":   strings.Replace(good, "/", "_", 1),
		"non-canonical tail": strings.Replace(good, "c29tZXNhbHQ", "c29tZXNhbHR", 1),
		"short key":          strings.Replace(good, "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "GpZ3sK/oH9p7VIiV", 1),
		"trailing field":     good + "$x",
		"no leading dollar":  good[1:],
		"huge":               good + strings.Repeat("A", 4096),
	}
	for name, h := range cases {
		if _, err := p.Verify(t.Context(), h, "password"); !errors.Is(err, rooms.ErrPasscodeHash) {
			t.Errorf("%s: err = %v, want ErrPasscodeHash", name, err)
		}
	}
	if err := rooms.ValidatePasscodeHash(good); err != nil {
		t.Fatalf("control case rejected: %v", err)
	}
}

func TestPasscode_HashRejectsEmptyAndHuge(t *testing.T) {
	p := newPasscodes(t, cheap)
	for _, pc := range []string{"", strings.Repeat("9", rooms.MaxPasscodeLen+1)} {
		if _, err := p.Hash(t.Context(), pc); !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("Hash(%d bytes) = %v, want ErrInvalid", len(pc), err)
		}
	}
	h, _ := p.Hash(t.Context(), "1")
	if ok, err := p.Verify(t.Context(), h, strings.Repeat("1", 1<<20)); ok || err != nil {
		t.Fatalf("Verify with a 1 MiB guess = %v, %v; want a plain mismatch", ok, err)
	}
}

func TestNewPasscodes_RejectsUnsafeParameters(t *testing.T) {
	for name, o := range map[string]rooms.PasscodeOptions{
		"tiny memory":       {Params: rooms.PasscodeParams{MemoryKiB: 1, Time: 1, Threads: 1}},
		"no time":           {Params: rooms.PasscodeParams{MemoryKiB: 64, Time: 0, Threads: 1}},
		"too many threads":  {Params: rooms.PasscodeParams{MemoryKiB: 64, Time: 1, Threads: 64}},
		"negative capacity": {MaxConcurrent: -1},
	} {
		if _, err := rooms.NewPasscodes(o); !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// FuzzParsePasscodeHash: hashes come from config files and from Redis; the
// parser must never panic, and must accept only what it would write.
func FuzzParsePasscodeHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$$$$$")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		err := rooms.ValidatePasscodeHash(s)
		if err != nil && !errors.Is(err, rooms.ErrPasscodeHash) {
			t.Fatalf("error %v does not wrap ErrPasscodeHash", err)
		}
		if err == nil && !canonicalPHC.MatchString(s) {
			t.Fatalf("accepted a non-canonical hash %q", s)
		}
	})
}

var canonicalPHC = regexp.MustCompile(`^\$argon2id\$v=19\$m=[1-9][0-9]*,t=[1-9][0-9]*,p=[1-9][0-9]*\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`)

func TestPasscode_RemembersOnlySuccessesAndForgetsThem(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	p := newPasscodes(t, rooms.PasscodeOptions{Params: cheap.Params, RememberFor: time.Minute, Now: clock.Now})
	ctx := t.Context()
	h, _ := p.Hash(ctx, "424242")
	other, _ := p.Hash(ctx, "424242") // same passcode, another room's hash
	if ok, err := p.Verify(ctx, h, "424242"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := p.Verify(ctx, h, "000000"); ok || err != nil {
		t.Fatal(ok, err)
	}
	// A cancelled context stops any check that would need Argon2id, so
	// an answer under one proves the check was remembered.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if ok, err := p.Verify(gone, h, "424242"); !ok || err != nil {
		t.Fatalf("remembered success = %v, %v; want true without hashing", ok, err)
	}
	if _, err := p.Verify(gone, h, "000000"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a wrong guess was answered without Argon2id: %v", err)
	}
	if _, err := p.Verify(gone, other, "424242"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a success on one hash was reused for another: %v", err)
	}
	clock.now = clock.now.Add(time.Minute)
	if _, err := p.Verify(gone, h, "424242"); !errors.Is(err, context.Canceled) {
		t.Fatalf("success still remembered after RememberFor: %v", err)
	}
	off := newPasscodes(t, rooms.PasscodeOptions{Params: cheap.Params, RememberFor: -1})
	h2, _ := off.Hash(ctx, "1")
	_, _ = off.Verify(ctx, h2, "1")
	if _, err := off.Verify(gone, h2, "1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("remembered although RememberFor < 0: %v", err)
	}
}
