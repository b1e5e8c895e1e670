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
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/crypto/e2ee"
)

const e2eeUsage = `usage: meetguard e2ee join --room R --gateway URL (--token T | --token-file F) [flags]

join runs a headless end-to-end key client: it registers a fresh device key for the room, follows and verifies
the gateway-signed roster chain, seals its sender key to every member and opens theirs, and prints the security
code and every epoch change until interrupted.

flags:
  --room R              the room
  --gateway URL         the gateway's origin (https; plain http only on a loopback address)
  --token T             an OIDC access token for the gateway (visible in the process list: prefer --token-file)
  --token-file F        a file holding the token, read again for every request (so it can be refreshed)
  --ticket T            the room ticket from joining the room, sent as Meetguard-Ticket
  --ticket-file F       a file holding the ticket, read again for every request; missing or empty means no
                        ticket yet (a room that requires e2ee lets a key register before its holder joins)
  --authority-key K     the gateway's e2ee authority public key (64 hex or base64 characters) to pin;
                        without it the key the gateway serves is trusted on first use and printed
  --classic             use a classic X25519 KEM key instead of X-Wing (only where the room allows it)

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
	var he *e2ee.HTTPError
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
	tr, err := e2ee.NewHTTPTransport(e2ee.HTTPTransportOptions{Gateway: o.gateway, Room: o.room, Authorize: o.authorize})
	if err != nil {
		return fail("%v", err)
	}
	authority := o.authorityKeyPinned
	origin := "pinned"
	if authority == nil {
		if authority, err = tr.AuthorityKey(ctx); err != nil {
			return fail("fetch the authority key: %v", err)
		}
		origin = "served by the gateway, trusted on first use; pin it with --authority-key " + hex.EncodeToString(authority)
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
	out.printf("registered %s as %q (%s), device key %s, credential %s, meeting instance %s\n",
		cred.KEM, cred.DisplayName, cred.Role, keyFingerprint(cred.SigningKey), cred.Hash().Short(), cred.Instance)
	err = client.Run(runCtx, func(st e2ee.Status) { printStatus(out, st) })
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

func printStatus(out *lineWriter, st e2ee.Status) {
	switch st.State {
	case e2ee.StateWaiting:
		out.printf("waiting to enter the roster (join the room; a host may have to admit you)\n")
	case e2ee.StateMember:
		lock := "unlocked"
		if st.Locked {
			lock = "locked"
		}
		var b strings.Builder
		members := "members"
		if len(st.Members) == 1 {
			members = "member"
		}
		fmt.Fprintf(&b, "epoch %d: %d %s, %s\nsecurity code: %s\n", st.Epoch, len(st.Members), members, lock, st.SecurityCode)
		for _, m := range st.Members {
			you := ""
			if m.Self {
				you = "  (you)"
			}
			fmt.Fprintf(&b, "  %-24s %-11s %-6s %s%s\n", printableName(m.DisplayName), m.Role, m.KEM, m.Credential.Short(), you)
		}
		out.printf("%s", b.String())
	case e2ee.StateRemoved:
		out.printf("epoch %d: this client is no longer in the roster\n", st.Epoch)
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
