package e2ee

import (
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
	"time"
	"unicode/utf8"
)

// APIPath is where a gateway serves the key exchange of room: every endpoint of docs/e2ee.md section 11 hangs off
// it (APIPath(room) + "roster", ...).
func APIPath(room string) string {
	return "/.meetguard/api/v1/rooms/" + url.PathEscape(room) + "/e2ee/"
}

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
// the HTTPTransport maps the code back. Order matters: the first match wins.
var httpErrors = []struct {
	err    error
	status int
	code   string
}{
	{ErrMalformed, http.StatusBadRequest, "malformed"},
	{ErrUnsupportedKEM, http.StatusBadRequest, "unsupported_kem"},
	{ErrNonce, http.StatusForbidden, "nonce"},
	{ErrBadSignature, http.StatusForbidden, "bad_signature"},
	{ErrWrongSender, http.StatusForbidden, "wrong_sender"},
	{ErrKEMNotAllowed, http.StatusForbidden, "kem_not_allowed"},
	{ErrNotMember, http.StatusForbidden, "not_member"},
	{ErrContextMismatch, http.StatusForbidden, "context_mismatch"},
	{ErrUnknownCredential, http.StatusNotFound, "unknown_credential"},
	{ErrUnknownEpoch, http.StatusNotFound, "unknown_epoch"},
	{ErrNoRoster, http.StatusNotFound, "no_roster"},
	{ErrStaleEpoch, http.StatusConflict, "stale_epoch"},
	{ErrReplay, http.StatusConflict, "replay"},
	{ErrFork, http.StatusConflict, "fork"},
	{ErrLocked, http.StatusConflict, "locked"},
	{ErrConflict, http.StatusConflict, "conflict"},
	{ErrRoomFull, http.StatusConflict, "room_full"},
	{ErrCredentialExpired, http.StatusConflict, "credential_expired"},
	{ErrIdentityMismatch, http.StatusForbidden, "identity_mismatch"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
}

// ErrorStatus maps an error of the Authority to the HTTP status and error code a gateway answers with
// (docs/e2ee.md section 11). Context ends are 503 "unavailable"; anything unknown is 500 "internal".
func ErrorStatus(err error) (status int, code string) {
	for _, e := range httpErrors {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// HTTPError is a gateway's refusal as an HTTPTransport saw it. When the code names one of this package's
// gateway-side sentinels (ErrNotMember, ErrStaleEpoch, ...), errors.Is matches it. A gateway can never make a
// client believe it raised an alarm, was removed or halted: those states are decided by the client alone.
type HTTPError struct {
	Op      string // the endpoint
	Status  int
	Code    string // the gateway's error code, "" if it sent none
	Message string // the gateway's message, cleaned for printing
	kind    error
}

func (e *HTTPError) Error() string {
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
func (e *HTTPError) Unwrap() error { return e.kind }

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
		return ErrNotMember
	case op == EndpointRoster && status == http.StatusNotFound:
		return ErrNoRoster
	case (op == EndpointKeys || op == EndpointKeyPackages) && status == http.StatusConflict:
		return ErrStaleEpoch
	case op == EndpointCommits && status == http.StatusConflict:
		return ErrConflict
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	}
	return nil
}

// parseWaitResponse reads the body of a 200 answer to wait: the gateway's change counter, uint64 big-endian.
func parseWaitResponse(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, malformed("wait", "version", "%d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// HTTPTransportOptions configures an HTTPTransport.
type HTTPTransportOptions struct {
	// Gateway is the gateway's origin, e.g. https://meet.example.com. Plain http is refused except on a loopback
	// address: the requests carry bearer tokens and tickets. Required.
	Gateway string
	Room    string // required
	// Authorize puts the caller's credentials on each request: a bearer token, the room ticket. It runs for
	// every request, so it can hand out a refreshed token. Required.
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

// HTTPTransport is the Transport of a client that talks to a real gateway over HTTP (docs/e2ee.md section 11).
// It carries one session: the identity behind Authorize and the room ticket, never a name of the caller.
type HTTPTransport struct {
	base       string
	room       string
	authorize  func(*http.Request) error
	client     *http.Client
	timeout    time.Duration
	maxWait    time.Duration
	maxBody    int64
	roomPrefix string
}

// NewHTTPTransport checks opts and returns a transport for one session in opts.Room.
func NewHTTPTransport(opts HTTPTransportOptions) (*HTTPTransport, error) {
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
	if err := checkText("http transport", "room", opts.Room, 1, maxRoom); err != nil {
		return nil, err
	}
	if opts.Authorize == nil {
		return nil, errors.New("e2ee: http transport: Authorize is required")
	}
	t := &HTTPTransport{
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

// do sends one request and returns the body of a 2xx answer (nil for 204), or an *HTTPError.
func (t *HTTPTransport) do(ctx context.Context, method, op string, query url.Values, body []byte) (int, []byte, error) {
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
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("e2ee: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		code, msg := parseErrorBody(b)
		return resp.StatusCode, nil, &HTTPError{Op: op, Status: resp.StatusCode, Code: code, Message: msg,
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
func (t *HTTPTransport) call(ctx context.Context, method, op string, query url.Values, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	status, b, err := t.do(ctx, method, op, query, body)
	if err == nil && status == http.StatusNoContent {
		return nil, fmt.Errorf("e2ee: %s: %w: empty answer", op, ErrMalformed)
	}
	return b, err
}

// AuthorityKey fetches the gateway's credential-signing public key. Trusting it is trust on first use over TLS;
// a client that can learn the key out of band (configuration) should pin that instead.
func (t *HTTPTransport) AuthorityKey(ctx context.Context) (ed25519.PublicKey, error) {
	b, err := t.call(ctx, http.MethodGet, EndpointAuthority, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, malformed("authority", "key", "%d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Challenge implements Transport.
func (t *HTTPTransport) Challenge(ctx context.Context) ([]byte, error) {
	return t.call(ctx, http.MethodPost, EndpointNonce, nil, nil)
}

// Register implements Transport.
func (t *HTTPTransport) Register(ctx context.Context, registration []byte) ([]byte, error) {
	return t.call(ctx, http.MethodPost, EndpointRegister, nil, registration)
}

// Roster implements Transport.
func (t *HTTPTransport) Roster(ctx context.Context, since uint64) ([]byte, error) {
	return t.call(ctx, http.MethodGet, EndpointRoster, url.Values{"since": {strconv.FormatUint(since, 10)}}, nil)
}

// PostKeyPackage implements Transport.
func (t *HTTPTransport) PostKeyPackage(ctx context.Context, keyPackage []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	_, _, err := t.do(ctx, http.MethodPost, EndpointKeyPackages, nil, keyPackage)
	return err
}

// KeyPackages implements Transport.
func (t *HTTPTransport) KeyPackages(ctx context.Context, epoch uint64) ([]byte, error) {
	return t.call(ctx, http.MethodGet, EndpointKeyPackages, url.Values{"epoch": {strconv.FormatUint(epoch, 10)}}, nil)
}

// PostCommit implements Transport.
func (t *HTTPTransport) PostCommit(ctx context.Context, epoch uint64, commit []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	_, _, err := t.do(ctx, http.MethodPost, EndpointCommits, url.Values{"epoch": {strconv.FormatUint(epoch, 10)}}, commit)
	return err
}

// SealedKeys implements Transport.
func (t *HTTPTransport) SealedKeys(ctx context.Context, epoch uint64) ([]byte, error) {
	return t.call(ctx, http.MethodGet, EndpointKeys, url.Values{"epoch": {strconv.FormatUint(epoch, 10)}}, nil)
}

// Wait implements Transport with long-polls of at most MaxWait, repeated until the gateway's counter exceeds
// after or ctx ends.
func (t *HTTPTransport) Wait(ctx context.Context, after uint64) (uint64, error) {
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
