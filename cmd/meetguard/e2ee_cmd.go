package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
)

const e2eeUsage = `usage: meetguard e2ee join --room R --gateway URL (--token T | --token-file F) [flags]

join runs a headless end-to-end key client: it registers a fresh device key for the room, follows and verifies
the gateway-signed roster chain, publishes fresh device-signed key packages, commits or opens each epoch's
secret, and prints the security code, every device (grouped by identity, with its fingerprint) and every
roster change until interrupted.

flags:
  --room R              the room
  --gateway URL         the gateway's origin (https; plain http only on a loopback address)
  --token T             an OIDC access token for the gateway (visible in the process list: prefer --token-file)
  --token-file F        a file holding the token, read again for every request (so it can be refreshed)
  --ticket T            the room ticket from joining the room, sent as Meetguard-Ticket
  --ticket-file F       a file holding the ticket, read again for every request; missing or empty means no
                        ticket yet (a room that requires e2ee lets a key register before its holder joins)
  --expect-identity S   the OIDC subject this client is (its token's "sub"); a gateway that would certify the
                        device for anyone else raises an alarm before any key is registered
  --expect-issuer URL   with --expect-identity: the OIDC issuer too
  --own-devices FPS     comma-separated fingerprints of your other devices in the meeting (e.g. your phone),
                        accepted without a prompt; any other device under your identity that was in the room
                        before this client is printed as unconfirmed
  --authority-key K     the gateway's e2ee authority public key (64 hex or base64 characters) to pin;
                        without it the key the gateway serves is trusted on first use, stored under the user's
                        config directory (meetguard/e2ee-authorities/) and must stay the same on every later run
  --classic             use a classic X25519 KEM key instead of X-Wing, and accept classic members (only where
                        the room allows it; by default the client requires post-quantum keys from everyone)

exit: 0 interrupted or removed from the meeting, 1 error, 2 usage, 3 alarm (the gateway deviated from the
protocol: keys were dropped, compare security codes out of band)
`

// Exit codes of `meetguard e2ee join`.
const (
	e2eeExitOK    = 0
	e2eeExitError = 1
	e2eeExitUsage = 2
	e2eeExitAlarm = 3
)

func runE2EE(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "e2ee", e2eeUsage, map[string]command{"join": runE2EEJoin}, args, stdout, stderr)
}

func runE2EEJoin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("meetguard e2ee join", stderr)
	var o joinOptions
	flags.StringVar(&o.room, "room", "", "room")
	flags.StringVar(&o.gateway, "gateway", "", "gateway origin")
	flags.StringVar(&o.token, "token", "", "access token")
	flags.StringVar(&o.tokenFile, "token-file", "", "file holding the access token")
	flags.StringVar(&o.ticket, "ticket", "", "room ticket")
	flags.StringVar(&o.ticketFile, "ticket-file", "", "file holding the room ticket")
	flags.StringVar(&o.authorityKey, "authority-key", "", "authority public key to pin")
	flags.BoolVar(&o.classic, "classic", false, "X25519 instead of X-Wing")
	flags.StringVar(&o.expectSubject, "expect-identity", "", "expected OIDC subject")
	flags.StringVar(&o.expectIssuer, "expect-issuer", "", "expected OIDC issuer")
	flags.StringVar(&o.ownDevices, "own-devices", "", "fingerprints of your other devices")
	flags.Usage = func() { fmt.Fprint(stderr, e2eeUsage) }
	if err := flags.Parse(args); err != nil {
		return e2eeExitUsage
	}
	if err := o.check(flags.NArg()); err != nil {
		fmt.Fprintf(stderr, "meetguard e2ee join: %v\n", err)
		return e2eeExitUsage
	}
	return e2eeJoin(ctx, o, stdout, stderr)
}

type joinOptions struct {
	room, gateway      string
	token, tokenFile   string
	ticket, ticketFile string
	authorityKey       string
	classic            bool
	expectSubject      string
	expectIssuer       string
	ownDevices         string
	authorityKeyPinned ed25519.PublicKey
}

func (o *joinOptions) check(extra int) error {
	switch {
	case extra > 0:
		return errors.New("unexpected arguments after the flags")
	case o.room == "":
		return errors.New("--room is required")
	case o.gateway == "":
		return errors.New("--gateway is required")
	case (o.token == "") == (o.tokenFile == ""):
		return errors.New("give exactly one of --token and --token-file")
	case o.ticket != "" && o.ticketFile != "":
		return errors.New("give at most one of --ticket and --ticket-file")
	case o.expectIssuer != "" && o.expectSubject == "":
		return errors.New("--expect-issuer needs --expect-identity")
	}
	if o.authorityKey != "" {
		k, err := parseAuthorityKey(o.authorityKey)
		if err != nil {
			return fmt.Errorf("--authority-key: %w", err)
		}
		o.authorityKeyPinned = k
	}
	return nil
}

// parseAuthorityKey accepts the 32-byte Ed25519 key as hex or base64 (standard or URL alphabet, padded or not).
func parseAuthorityKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	decoders := []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString}
	for _, dec := range decoders {
		if b, err := dec(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, errors.New("not a 32-byte key in hex or base64")
}

// readSecretFile returns the trimmed content of path; missing files are "" when optional.
func readSecretFile(path string, optional bool) (string, error) {
	b, err := os.ReadFile(path)
	if optional && errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// authorize puts the bearer token and the room ticket on each request, reading the files afresh.
func (o *joinOptions) authorize(r *http.Request) error {
	token := o.token
	if o.tokenFile != "" {
		var err error
		if token, err = readSecretFile(o.tokenFile, false); err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		if token == "" {
			return fmt.Errorf("--token-file %s is empty", o.tokenFile)
		}
	}
	r.Header.Set("Authorization", "Bearer "+token)
	ticket := o.ticket
	if o.ticketFile != "" {
		var err error
		if ticket, err = readSecretFile(o.ticketFile, true); err != nil {
			return fmt.Errorf("--ticket-file: %w", err)
		}
	}
	if ticket != "" {
		r.Header.Set("Meetguard-Ticket", ticket)
	}
	return nil
}

// Refusals that end a run: the client would otherwise wait for ever.
var (
	// errNoLongerMember: the gateway stopped serving a member (kicked, banned, left, or its admission lapsed);
	// the roster chain shows no removal because the gateway serves nothing more.
	errNoLongerMember = errors.New("the gateway no longer serves this client: removed from the room, or the ticket or token expired")
	// errRoleChanged: the key was registered before admission for another role than the admission's.
	errRoleChanged = errors.New("admitted with another role than the key was registered for: run again to register a key for it")
)

// followTransport notices when the gateway refuses a member's roster requests for good.
type followTransport struct {
	e2ee.Transport
	stop context.CancelCauseFunc
}

func (t followTransport) Roster(ctx context.Context, since uint64) ([]byte, error) {
	b, err := t.Transport.Roster(ctx, since)
	var he *e2eehttp.Error
	switch {
	case since > 0 && errors.Is(err, e2ee.ErrNotMember):
		t.stop(errNoLongerMember)
	case errors.As(err, &he) && he.Code == "role_changed":
		t.stop(errRoleChanged)
	}
	return b, err
}

// waitingPoll is how often a client that is not in the roster yet asks again.
const waitingPoll = 2 * time.Second

// Wait turns the refusal a client gets before it enters the roster into a short pause: the SDK then asks for
// the roster again, without logging a warning every second while the caller waits to be admitted.
func (t followTransport) Wait(ctx context.Context, after uint64) (uint64, error) {
	v, err := t.Transport.Wait(ctx, after)
	if errors.Is(err, e2ee.ErrNotMember) {
		timer := time.NewTimer(waitingPoll)
		defer timer.Stop()
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		return after, context.DeadlineExceeded
	}
	return v, err
}

func e2eeJoin(ctx context.Context, o joinOptions, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "meetguard e2ee join: "+format+"\n", args...)
		return e2eeExitError
	}
	tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: o.gateway, Room: o.room, Authorize: o.authorize})
	if err != nil {
		return fail("%v", err)
	}
	authority := o.authorityKeyPinned
	origin := "pinned"
	if authority == nil {
		if authority, err = tr.AuthorityKey(ctx); err != nil {
			return fail("fetch the authority key: %v", err)
		}
		origin, err = trustOnFirstUse(o.gateway, o.room, authority)
		if errors.Is(err, errAuthorityChanged) {
			fmt.Fprintf(stderr, "ALARM: %v\n", err)
			return e2eeExitAlarm
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	kem := e2ee.KEMXWing
	if o.classic {
		kem = e2ee.KEMX25519
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	logger := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(stderr), zap.WarnLevel))
	client, err := e2ee.NewClient(ctx, e2ee.ClientOptions{
		Transport: followTransport{Transport: tr, stop: stop}, AuthorityKey: authority, Room: o.room, KEM: kem,
		AllowClassicKEM: o.classic, ExpectIdentity: e2ee.Identity{Issuer: o.expectIssuer, Subject: o.expectSubject},
		Logger: logger.Named("e2ee"),
	})
	if err != nil {
		return fail("%v", err)
	}
	out := &lineWriter{w: stdout}
	out.printf("room %s via %s\nauthority key %s (%s)\n", o.room, o.gateway, keyFingerprint(authority), origin)
	cred, err := client.Register(ctx)
	if err != nil {
		if errors.Is(err, e2ee.ErrAlarm) {
			fmt.Fprintf(stderr, "ALARM: %v\n", err)
			return e2eeExitAlarm
		}
		return fail("register: %v", err)
	}
	out.printf("registered %s as %q (%s, %s), device %s, credential %s, meeting instance %s\n",
		kem, cred.DisplayName, printableName(cred.Identity.Subject), cred.Role, cred.Fingerprint(), cred.Hash().Short(), cred.Instance)
	own := map[string]bool{}
	for _, fp := range strings.Split(o.ownDevices, ",") {
		if fp = strings.TrimSpace(fp); fp != "" {
			own[fp] = true
		}
	}
	printed := 0
	err = client.Run(runCtx, func(st e2ee.Status) {
		for _, fp := range st.Unconfirmed {
			if own[fp] && client.ConfirmDevice(fp) == nil {
				st = client.Status()
			}
		}
		printed = printStatus(out, st, printed)
	})
	switch {
	case errors.Is(err, e2ee.ErrAlarm), errors.Is(err, e2ee.ErrHalted):
		fmt.Fprintf(stderr, "ALARM: %v\nAll keys were dropped. Compare security codes with the other participants out of band.\n", err)
		return e2eeExitAlarm
	case errors.Is(err, e2ee.ErrRemoved):
		out.printf("removed from the meeting\n")
		return e2eeExitOK
	case errors.Is(context.Cause(runCtx), errNoLongerMember), errors.Is(context.Cause(runCtx), errRoleChanged):
		return fail("%v", context.Cause(runCtx))
	case ctx.Err() != nil:
		out.printf("stopped\n")
		return e2eeExitOK
	default:
		return fail("%v", err)
	}
}

// printStatus prints a status and the roster changes after the first printed ones; it returns how many
// changes have been printed.
func printStatus(out *lineWriter, st e2ee.Status, printed int) int {
	var b strings.Builder
	if printed > len(st.Changes) {
		printed = 0 // the client's bounded history moved on
	}
	for _, ch := range st.Changes[printed:] {
		switch ch.Kind {
		case e2ee.ChangeLocked, e2ee.ChangeUnlocked:
			fmt.Fprintf(&b, "epoch %d: room %s\n", ch.Epoch, ch.Kind)
		case e2ee.ChangeAdded:
			how := "while the room was locked (an unlock epoch preceded it)"
			if ch.Unlocked {
				how = "while the room was unlocked"
			}
			fmt.Fprintf(&b, "epoch %d: %q (device %s) added %s\n", ch.Epoch, printableName(ch.DisplayName), ch.Fingerprint, how)
		case e2ee.ChangeRemoved:
			fmt.Fprintf(&b, "epoch %d: %q (device %s) left\n", ch.Epoch, printableName(ch.DisplayName), ch.Fingerprint)
		case e2ee.ChangeOwnDeviceAdded:
			fmt.Fprintf(&b, "epoch %d: ANOTHER DEVICE OF YOURS joined: %s (if it is not yours, stop and tell the host)\n", ch.Epoch, ch.Fingerprint)
		}
	}
	switch st.State {
	case e2ee.StateWaiting:
		b.WriteString("waiting to enter the roster (join the room; a host may have to admit you)\n")
	case e2ee.StateMember:
		lock := "unlocked"
		if st.Locked {
			lock = "locked"
		}
		members := "devices"
		if len(st.Members) == 1 {
			members = "device"
		}
		code := st.SecurityCode
		if code == "" {
			code = "(waiting for the epoch secret)"
			if st.Err != nil {
				code = "(no key: " + printableName(st.Err.Error()) + ")"
			}
		}
		fmt.Fprintf(&b, "epoch %d.%d: %d %s, %s\nsecurity code: %s\n", st.Epoch, st.Generation, len(st.Members), members, lock, code)
		for _, group := range st.Devices() {
			fmt.Fprintf(&b, "  %s (%s, %s)\n", printableName(group[0].DisplayName), printableName(group[0].Identity.Subject), group[0].Role)
			for _, m := range group {
				note := ""
				switch {
				case m.Self:
					note = "  (this device)"
				case m.OwnDevice && m.Confirmed:
					note = "  (your other device)"
				case m.OwnDevice:
					note = "  (UNCONFIRMED device under your identity: pass --own-devices " + m.Fingerprint + " if it is yours)"
				}
				fmt.Fprintf(&b, "    device %s  %-6s%s\n", m.Fingerprint, m.KEM, note)
			}
		}
	case e2ee.StateRemoved:
		fmt.Fprintf(&b, "epoch %d: this client is no longer in the roster\n", st.Epoch)
	}
	out.printf("%s", b.String())
	return len(st.Changes)
}

// errAuthorityChanged: the gateway serves another authority key than the one trusted on first use.
var errAuthorityChanged = errors.New("the gateway's e2ee authority key changed since it was first trusted")

// trustOnFirstUse pins the authority key the gateway serves under the user's config directory, one file per
// gateway origin and room, and refuses a different key later. It returns how the key was trusted.
func trustOnFirstUse(gateway, room string, key ed25519.PublicKey) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("trust on first use: no config directory (%v): pin the key with --authority-key %s", err, hex.EncodeToString(key))
	}
	name := sha256.Sum256([]byte(gateway + "\n" + room))
	path := filepath.Join(dir, "meetguard", "e2ee-authorities", hex.EncodeToString(name[:16]))
	stored, err := os.ReadFile(path)
	switch {
	case err == nil:
		pinned, perr := parseAuthorityKey(string(stored))
		if perr != nil {
			return "", fmt.Errorf("trust on first use: %s: %v", path, perr)
		}
		if !pinned.Equal(key) {
			return "", fmt.Errorf("%w: %s was pinned in %s, the gateway now serves %s", errAuthorityChanged,
				keyFingerprint(pinned), path, keyFingerprint(key))
		}
		return "trusted on first use, unchanged since (" + path + ")", nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("trust on first use: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("trust on first use: %w", err)
		}
		return "served by the gateway, trusted on first use and pinned in " + path, nil
	default:
		return "", fmt.Errorf("trust on first use: %w", err)
	}
}

// printableName keeps a gateway-chosen display name from moving the terminal's cursor.
func printableName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func keyFingerprint(k []byte) string {
	d := sha256.Sum256(k)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(d[:])
}

// lineWriter serialises output from the run loop and the main goroutine.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
