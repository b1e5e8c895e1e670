package e2eehttp

import (
	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"

	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// APIPath is where a gateway serves the key exchange of room: every endpoint of docs/e2ee.md section 11 hangs off
// it (APIPath(room) + "roster", ...).
func APIPath(room string) string {
	return "/.meetguard/api/v1/rooms/" + url.PathEscape(room) + "/e2ee/"
}

// TicketHeader carries the caller's room ticket on a request, and on an answer the gateway's renewal of it once
// half its life is gone (docs/api.md, "Tickets").
const TicketHeader = "Meetguard-Ticket"

// maxTicketLen bounds a renewed ticket taken from an answer (a gateway ticket is about 100 characters).
const maxTicketLen = 1024

// ContentType is the media type of every binary message on the wire, in both directions.
const ContentType = "application/octet-stream"

// The endpoint names below APIPath.
const (
	EndpointAuthority   = "authority"
	EndpointNonce       = "nonce"
	EndpointRegister    = "register"
	EndpointRoster      = "roster"
	EndpointKeyPackages = "keypackages"
	EndpointCommits     = "commits"
	EndpointKeys        = "keys"
	EndpointWait        = "wait"
)

// httpErrors is the one table between this package's sentinels and HTTP: the gateway answers with ErrorStatus,
// the Transport maps the code back. Order matters: the first match wins.
var httpErrors = []struct {
	err    error
	status int
	code   string
}{
	{e2ee.ErrMalformed, http.StatusBadRequest, "malformed"},
	{e2ee.ErrUnsupportedKEM, http.StatusBadRequest, "unsupported_kem"},
	{e2ee.ErrNonce, http.StatusForbidden, "nonce"},
	{e2ee.ErrBadSignature, http.StatusForbidden, "bad_signature"},
	{e2ee.ErrWrongSender, http.StatusForbidden, "wrong_sender"},
	{e2ee.ErrKEMNotAllowed, http.StatusForbidden, "kem_not_allowed"},
	{e2ee.ErrNotMember, http.StatusForbidden, "not_member"},
	{e2ee.ErrContextMismatch, http.StatusForbidden, "context_mismatch"},
	{e2ee.ErrUnknownCredential, http.StatusNotFound, "unknown_credential"},
	{e2ee.ErrUnknownEpoch, http.StatusNotFound, "unknown_epoch"},
	{e2ee.ErrNoRoster, http.StatusNotFound, "no_roster"},
	{e2ee.ErrStaleEpoch, http.StatusConflict, "stale_epoch"},
	{e2ee.ErrReplay, http.StatusConflict, "replay"},
	{e2ee.ErrFork, http.StatusConflict, "fork"},
	{e2ee.ErrLocked, http.StatusConflict, "locked"},
	{e2ee.ErrConflict, http.StatusConflict, "conflict"},
	{e2ee.ErrRoomFull, http.StatusConflict, "room_full"},
	{e2ee.ErrCredentialExpired, http.StatusConflict, "credential_expired"},
	{e2ee.ErrIdentityMismatch, http.StatusForbidden, "identity_mismatch"},
	{e2ee.ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
}

// ErrorStatus maps an error of the Authority to the HTTP status and error code a gateway answers with
// (docs/e2ee.md section 11). Context ends and an unreachable store are 503 "unavailable"; anything unknown is 500 "internal".
func ErrorStatus(err error) (status int, code string) {
	for _, e := range httpErrors {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, e2eestore.ErrUnavailable) {
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// Error is a gateway's refusal as an Transport saw it. When the code names one of this package's
// gateway-side sentinels (e2ee.ErrNotMember, e2ee.ErrStaleEpoch, ...), errors.Is matches it. A gateway can never make a
// client believe it raised an alarm, was removed or halted: those states are decided by the client alone.
type Error struct {
	Op      string // the endpoint
	Status  int
	Code    string // the gateway's error code, "" if it sent none
	Message string // the gateway's message, cleaned for printing
	kind    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("e2ee: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the sentinel the status and code stand for, if any.
func (e *Error) Unwrap() error { return e.kind }

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 4 << 10

// parseErrorBody reads a gateway's JSON error {"error": code, "message": msg}. Anything else yields empty
// strings: the status alone then decides. The message is cut and stripped of control characters, since it is
// printed by tools.
func parseErrorBody(b []byte) (code, message string) {
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &body) != nil {
		return "", ""
	}
	return printable(body.Error, 64), printable(body.Message, 256)
}

func printable(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= limit {
			break
		}
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// classify maps a gateway refusal to a sentinel: by its code when the code is in the table, else by the
// status where docs/e2ee.md section 11 says what a client expects for the endpoint.
func classify(op string, status int, code string) error {
	for _, e := range httpErrors {
		if code != "" && code == e.code {
			return e.err
		}
	}
	switch {
	case op == EndpointRoster && status == http.StatusForbidden:
		return e2ee.ErrNotMember
	case op == EndpointRoster && status == http.StatusNotFound:
		return e2ee.ErrNoRoster
	case (op == EndpointKeys || op == EndpointKeyPackages) && status == http.StatusConflict:
		return e2ee.ErrStaleEpoch
	case op == EndpointCommits && status == http.StatusConflict:
		return e2ee.ErrConflict
	case status == http.StatusTooManyRequests:
		return e2ee.ErrRateLimited
	}
	return nil
}

// maxRoom is the longest room name the wire format carries (as crypto/e2ee checks it).
const maxRoom = 256

// malformed is e2ee's error for a message that breaks the encoding: the caller matches e2ee.ErrMalformed.
func malformed(what, field, format string, args ...any) error {
	return fmt.Errorf("%w: %s.%s: %s", e2ee.ErrMalformed, what, field, fmt.Sprintf(format, args...))
}

// parseWaitResponse reads the body of a 200 answer to wait: the gateway's change counter, uint64 big-endian.
func parseWaitResponse(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, malformed("wait", "version", "%d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Options configures an Transport.
type Options struct {
	// Gateway is the gateway's origin, e.g. https://meet.example.com. Plain http is refused except on a loopback
	// address: the requests carry bearer tokens and tickets. Required.
	Gateway string
	Room    string // required
	// Authorize puts the caller's credentials on each request: a bearer token, the room ticket. It runs for
	// every request, so it can hand out a refreshed token. Required. A room ticket lasts minutes and a meeting
	// longer: when an answer carries the gateway's renewal of the ticket Authorize set (TicketHeader), the
	// transport sends the renewal in its place from then on, so a ticket set once at join keeps working for as
	// long as the admission stands.
	Authorize func(*http.Request) error
	// HTTPClient sends the requests; its Timeout must be zero or longer than MaxWait. Default: a client with
	// dial, TLS and idle timeouts and no overall timeout (each call has its own deadline).
	HTTPClient *http.Client
	// RequestTimeout bounds each call other than a long-poll. Default 30 seconds.
	RequestTimeout time.Duration
	// MaxWait is the longest single long-poll; Wait repeats them until its context ends. Default 25 seconds.
	MaxWait time.Duration
	// MaxResponseBytes bounds what is read of an answer. Default 16 MiB (a roster update of a 1 000-member room
	// is about 1.3 MB, one recipient's sealed keys in it about 1.7 MB).
	MaxResponseBytes int64
}

// Transport is the e2ee.Transport of a client that talks to a real gateway over HTTP (docs/e2ee.md section 11).
// It carries one session: the identity behind Authorize and the room ticket, never a name of the caller.
type Transport struct {
	base       string
	room       string
	authorize  func(*http.Request) error
	client     *http.Client
	timeout    time.Duration
	maxWait    time.Duration
	maxBody    int64
	roomPrefix string

	mu      sync.Mutex
	renewal ticketRenewal // the newest renewal of the ticket Authorize sets
}

// ticketRenewal: the gateway renewed ticket of as to.
type ticketRenewal struct{ of, to string }

// validTicket accepts what a gateway ticket looks like (unpadded base64url), within maxTicketLen.
func validTicket(s string) bool {
	if s == "" || len(s) > maxTicketLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewTransport checks opts and returns a transport for one session in opts.Room.
func NewTransport(opts Options) (*Transport, error) {
	u, err := url.Parse(opts.Gateway)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("e2ee: http transport: Gateway %q must be an origin such as https://meet.example.com", opts.Gateway)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("e2ee: http transport: Gateway %q: plain http only on a loopback address", opts.Gateway)
		}
	default:
		return nil, fmt.Errorf("e2ee: http transport: Gateway %q: scheme must be https", opts.Gateway)
	}
	if len(opts.Room) < 1 || len(opts.Room) > maxRoom || !utf8.ValidString(opts.Room) {
		return nil, malformed("http transport", "room", "length %d outside 1..%d or not UTF-8", len(opts.Room), maxRoom)
	}
	if opts.Authorize == nil {
		return nil, errors.New("e2ee: http transport: Authorize is required")
	}
	t := &Transport{
		base:      u.Scheme + "://" + u.Host,
		room:      opts.Room,
		authorize: opts.Authorize,
		client:    opts.HTTPClient,
		timeout:   opts.RequestTimeout,
		maxWait:   opts.MaxWait,
		maxBody:   opts.MaxResponseBytes,
	}
	t.roomPrefix = t.base + APIPath(opts.Room)
	if t.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = 0 // long-polls answer late on purpose; every call has a deadline instead
		tr.IdleConnTimeout = 90 * time.Second
		t.client = &http.Client{Transport: tr}
	}
	if t.timeout <= 0 {
		t.timeout = 30 * time.Second
	}
	if t.maxWait <= 0 {
		t.maxWait = 25 * time.Second
	}
	if t.maxBody <= 0 {
		t.maxBody = 16 << 20
	}
	return t, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// do sends one request and returns the body of a 2xx answer (nil for 204), or an *Error.
func (t *Transport) do(ctx context.Context, method, op string, query url.Values, body []byte) (int, []byte, error) {
	u := t.roomPrefix + op
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if method == http.MethodPost {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("e2ee: %s: %w", op, err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", ContentType)
	}
	req.Header.Set("Accept", ContentType)
	if err := t.authorize(req); err != nil {
		return 0, nil, fmt.Errorf("e2ee: %s: authorize: %w", op, err)
	}
	sent := req.Header.Get(TicketHeader)
	if sent != "" {
		t.mu.Lock()
		if t.renewal.of == sent {
			req.Header.Set(TicketHeader, t.renewal.to)
		}
		t.mu.Unlock()
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("e2ee: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if renewed := resp.Header.Get(TicketHeader); sent != "" && validTicket(renewed) {
		// Keyed by what Authorize set, not by what was sent: renewals of renewals all replace the ticket the
		// application holds.
		t.mu.Lock()
		t.renewal = ticketRenewal{of: sent, to: renewed}
		t.mu.Unlock()
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		code, msg := parseErrorBody(b)
		return resp.StatusCode, nil, &Error{Op: op, Status: resp.StatusCode, Code: code, Message: msg,
			kind: classify(op, resp.StatusCode, code)}
	}
	if resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, t.maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("e2ee: %s: read answer: %w", op, err)
	}
	if int64(len(b)) > t.maxBody {
		return 0, nil, fmt.Errorf("e2ee: %s: answer larger than %d bytes", op, t.maxBody)
	}
	return resp.StatusCode, b, nil
}

// call is do under the per-request deadline, for answers that must carry a body.
func (t *Transport) call(ctx context.Context, method, op string, query url.Values, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	status, b, err := t.do(ctx, method, op, query, body)
	if err == nil && status == http.StatusNoContent {
		return nil, fmt.Errorf("e2ee: %s: %w: empty answer", op, e2ee.ErrMalformed)
	}
	return b, err
}

// AuthorityKey fetches the gateway's credential-signing public key. Trusting it is trust on first use over TLS;
// a client that can learn the key out of band (configuration) should pin that instead.
func (t *Transport) AuthorityKey(ctx context.Context) (ed25519.PublicKey, error) {
	b, err := t.call(ctx, http.MethodGet, EndpointAuthority, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, malformed("authority", "key", "%d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Challenge implements e2ee.Transport.
func (t *Transport) Challenge(ctx context.Context) ([]byte, error) {
	return t.call(ctx, http.MethodPost, EndpointNonce, nil, nil)
}

// Register implements e2ee.Transport.
func (t *Transport) Register(ctx context.Context, registration []byte) ([]byte, error) {
	return t.call(ctx, http.MethodPost, EndpointRegister, nil, registration)
}

// Roster implements e2ee.Transport.
func (t *Transport) Roster(ctx context.Context, since uint64) ([]byte, error) {
	return t.call(ctx, http.MethodGet, EndpointRoster, url.Values{"since": {strconv.FormatUint(since, 10)}}, nil)
}

// PostKeyPackage implements e2ee.Transport.
func (t *Transport) PostKeyPackage(ctx context.Context, keyPackage []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	_, _, err := t.do(ctx, http.MethodPost, EndpointKeyPackages, nil, keyPackage)
	return err
}

// KeyPackages implements e2ee.Transport.
func (t *Transport) KeyPackages(ctx context.Context, epoch uint64) ([]byte, error) {
	return t.call(ctx, http.MethodGet, EndpointKeyPackages, url.Values{"epoch": {strconv.FormatUint(epoch, 10)}}, nil)
}

// PostCommit implements e2ee.Transport.
func (t *Transport) PostCommit(ctx context.Context, epoch uint64, commit []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	_, _, err := t.do(ctx, http.MethodPost, EndpointCommits, url.Values{"epoch": {strconv.FormatUint(epoch, 10)}}, commit)
	return err
}

// SealedKeys implements e2ee.Transport.
func (t *Transport) SealedKeys(ctx context.Context, epoch uint64) ([]byte, error) {
	return t.call(ctx, http.MethodGet, EndpointKeys, url.Values{"epoch": {strconv.FormatUint(epoch, 10)}}, nil)
}

// Wait implements e2ee.Transport with long-polls of at most MaxWait, repeated until the gateway's counter exceeds
// after or ctx ends.
func (t *Transport) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		wait := t.maxWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait <= 0 {
			<-ctx.Done() // the deadline is due: never report it early as a change
		}
		if ctx.Err() != nil {
			return after, context.Cause(ctx)
		}
		// The gateway answers after at most wait; the extra time covers the round trip.
		rctx, cancel := context.WithTimeout(ctx, wait+t.timeout)
		q := url.Values{"after": {strconv.FormatUint(after, 10)}, "wait": {strconv.FormatInt(wait.Milliseconds(), 10) + "ms"}}
		status, b, err := t.do(rctx, http.MethodGet, EndpointWait, q, nil)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return after, context.Cause(ctx)
		case err != nil:
			return after, err
		case status == http.StatusNoContent:
			continue // the gateway's wait ended without a change
		}
		v, err := parseWaitResponse(b)
		if err != nil {
			return after, fmt.Errorf("e2ee: wait: %w", err)
		}
		if v > after {
			return v, nil
		}
	}
}
