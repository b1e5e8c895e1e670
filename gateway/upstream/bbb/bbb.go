// Package bbb is the gateway's adapter for BigBlueButton: after the gateway
// admits a person to a room, it calls the API's create (idempotent) and
// join (redirect=false) server-side, signed with the shared secret, and
// sends the browser to the session URL BigBlueButton returned.
//
// It must never put the secret or a checksummed API URL in front of a
// browser, never sign with SHA-1, never join anyone to a meeting other
// than the admitted room, and never admit on an answer it cannot read:
// an error, an HTML page, garbage or a FAILED return code refuses the
// join. It never follows a redirect from the API and never sends the
// browser to a host that is not configured.
package bbb

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/upstream/internal/claim"
	"github.com/meetguard/meetguard/gateway/upstream/internal/pseudonym"
)

// Errors of a join; the gateway refuses the browser with 503 on any.
var (
	// ErrAPI: the API could not be reached or answered an HTTP error.
	ErrAPI = errors.New("bbb: API call failed")
	// ErrResponse: the answer is not a BigBlueButton API response.
	ErrResponse = errors.New("bbb: not a BigBlueButton API response")
	// ErrFailed: the API answered returncode FAILED.
	ErrFailed = errors.New("bbb: API returned FAILED")
	// ErrJoinURL: the session URL is missing, malformed, or points to a
	// host that is not allowed.
	ErrJoinURL = errors.New("bbb: join URL refused")
	// ErrUnknownRole: the policy's role has no BigBlueButton role.
	ErrUnknownRole = errors.New("bbb: unknown role")
)

// MinSecretBytes is the shortest shared secret accepted.
const MinSecretBytes = 32

// maxResponseBytes bounds an API answer; real ones are a few KiB.
const maxResponseBytes = 1 << 20

// Lock are the viewers' lock settings sent with create.
type Lock struct {
	DisableCam, DisableMic, DisablePrivateChat, DisablePublicChat, DisableNotes, HideUserList bool
}

// Settings are the room settings create carries.
type Settings struct {
	// Capacity is maxParticipants; 0 means DefaultCapacity.
	Capacity int
}

// Options configures an Adapter.
type Options struct {
	Upstream string
	// APIURL is the API endpoint, e.g. https://bbb.example.org/bigbluebutton/api.
	APIURL string
	Secret string
	// Checksum is "sha256" or "sha512"; SHA-1 is refused.
	Checksum    string
	GuestPolicy string // default ALWAYS_ACCEPT
	Lock        Lock
	// RedirectHosts are the hosts ("host" or "host:port") a session URL may
	// point to. Required.
	RedirectHosts []string
	// DefaultCapacity is maxParticipants when Room gives none. Default 300.
	DefaultCapacity int
	// Room returns a room's settings; nil uses the defaults.
	Room func(ctx context.Context, room string) (Settings, error)
	// HTTPClient calls the API. Default: 10s timeout. Redirects are never
	// followed.
	HTTPClient *http.Client
	Logger     *zap.Logger
}

// Adapter is a BigBlueButton upstream.
type Adapter struct {
	opts  Options
	api   string
	hash  func() hash.Hash
	users *pseudonym.Deriver
	hosts map[string]bool
}

var (
	_ admission.Adapter        = (*Adapter)(nil)
	_ admission.JoinRedirector = (*Adapter)(nil)
)

// New returns an Adapter. It does not call the API.
func New(_ context.Context, opts Options) (*Adapter, error) {
	if len(opts.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("bbb: secret must be at least %d bytes", MinSecretBytes)
	}
	var h func() hash.Hash
	switch opts.Checksum {
	case "sha256", "":
		h = sha256.New
	case "sha512":
		h = sha512.New
	default:
		return nil, fmt.Errorf("bbb: checksum %q refused: use sha256 or sha512", opts.Checksum)
	}
	u, err := url.Parse(opts.APIURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" {
		return nil, fmt.Errorf("bbb: bad api_url %q", opts.APIURL)
	}
	if len(opts.RedirectHosts) == 0 {
		return nil, errors.New("bbb: redirect_hosts is required")
	}
	hosts := map[string]bool{}
	for _, h := range opts.RedirectHosts {
		hosts[strings.ToLower(h)] = true
	}
	if opts.GuestPolicy == "" {
		opts.GuestPolicy = "ALWAYS_ACCEPT"
	}
	if opts.DefaultCapacity <= 0 {
		opts.DefaultCapacity = 300
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	client := *opts.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.HTTPClient = &client
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	users, err := pseudonym.New([]byte(opts.Secret), "bbb user")
	if err != nil {
		return nil, err
	}
	return &Adapter{opts: opts, api: strings.TrimSuffix(opts.APIURL, "/"), hash: h, users: users, hosts: hosts}, nil
}

// Forward passes requests through: BigBlueButton's own client and
// endpoints authenticate with the session token join handed out.
func (a *Adapter) Forward(context.Context, *httputil.ProxyRequest, *admission.Participant) error {
	return nil
}

// JoinURL creates the room's meeting if needed, joins the admitted person
// to it, and returns the session URL to send the browser to.
func (a *Adapter) JoinURL(ctx context.Context, p admission.Participant) (string, error) {
	role, listenOnly, err := roleFor(p.Role)
	if err != nil {
		return "", err
	}
	if p.Room == "" {
		return "", fmt.Errorf("%w: no room", ErrAPI)
	}
	st := Settings{}
	if a.opts.Room != nil {
		if st, err = a.opts.Room(ctx, p.Room); err != nil {
			return "", fmt.Errorf("bbb: room settings: %w", err)
		}
	}
	if st.Capacity <= 0 {
		st.Capacity = a.opts.DefaultCapacity
	}
	created, err := a.call(ctx, "create", a.createQuery(p.Room, st))
	if err != nil {
		return "", err
	}
	if !digits(created.CreateTime) {
		return "", fmt.Errorf("%w: create: createTime %q is not a number", ErrResponse, clip(created.CreateTime))
	}
	joined, err := a.call(ctx, "join", a.joinQuery(p, role, listenOnly, created.CreateTime))
	if err != nil {
		return "", err
	}
	target, err := a.checkJoinURL(joined.URL)
	if err != nil {
		return "", err
	}
	a.opts.Logger.Info("bbb join", zap.String("upstream", a.opts.Upstream), zap.String("room", p.Room), zap.String("role", role))
	return target, nil
}

func roleFor(role string) (bbbRole string, listenOnly bool, err error) {
	switch role {
	case "host":
		return "MODERATOR", false, nil
	case "participant":
		return "VIEWER", false, nil
	case "viewer":
		return "VIEWER", true, nil
	}
	return "", false, fmt.Errorf("%w %q", ErrUnknownRole, role)
}

// createQuery is create's query; its order is fixed so that the checksum
// covers exactly the string sent.
func (a *Adapter) createQuery(room string, st Settings) string {
	q := []string{
		"name=" + url.QueryEscape(room),
		"meetingID=" + url.QueryEscape(room),
		"guestPolicy=" + url.QueryEscape(a.opts.GuestPolicy),
		"maxParticipants=" + strconv.Itoa(st.Capacity),
	}
	l := a.opts.Lock
	locks := []struct {
		on   bool
		name string
	}{
		{l.DisableCam, "lockSettingsDisableCam"}, {l.DisableMic, "lockSettingsDisableMic"},
		{l.DisablePrivateChat, "lockSettingsDisablePrivateChat"}, {l.DisablePublicChat, "lockSettingsDisablePublicChat"},
		{l.DisableNotes, "lockSettingsDisableNotes"}, {l.HideUserList, "lockSettingsHideUserList"},
	}
	locked := false
	for _, s := range locks {
		if s.on {
			q = append(q, s.name+"=true")
			locked = true
		}
	}
	if locked {
		q = append(q, "lockSettingsLockOnJoin=true")
	}
	return strings.Join(q, "&")
}

func (a *Adapter) joinQuery(p admission.Participant, role string, listenOnly bool, createTime string) string {
	q := []string{
		"fullName=" + url.QueryEscape(claim.DisplayName(p.Identity.DisplayName())),
		"meetingID=" + url.QueryEscape(p.Room),
		"role=" + role,
		"userID=" + url.QueryEscape(a.UserID(p)),
		"createTime=" + createTime,
		"redirect=false",
	}
	if p.FromLobby {
		q = append(q, "guest=true")
	}
	if listenOnly {
		q = append(q, "userdata-bbb_force_listen_only=true")
	}
	return strings.Join(q, "&")
}

// UserID is the pseudonym BigBlueButton knows a person by: stable across
// joins, unlinkable to the OIDC subject without the secret.
func (a *Adapter) UserID(p admission.Participant) string {
	return "mg-" + a.users.Of(12, p.Identity.Issuer, p.Identity.Subject)
}

// checksum is hex(H(call + query + secret)), the API's security model.
func checksum(h func() hash.Hash, call, query, secret string) string {
	m := h()
	m.Write([]byte(call))
	m.Write([]byte(query))
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// signedURL is the API URL of call with query and its checksum.
func (a *Adapter) signedURL(call, query string) string {
	return a.api + "/" + call + "?" + query + "&checksum=" + checksum(a.hash, call, query, a.opts.Secret)
}

// response is the part of an API answer the adapter reads.
type response struct {
	XMLName    xml.Name `xml:"response"`
	ReturnCode string   `xml:"returncode"`
	MessageKey string   `xml:"messageKey"`
	Message    string   `xml:"message"`
	CreateTime string   `xml:"createTime"`
	URL        string   `xml:"url"`
}

func (a *Adapter) call(ctx context.Context, call, query string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.signedURL(call, query), nil)
	if err != nil {
		return response{}, fmt.Errorf("%w: %s: %w", ErrAPI, call, err)
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		// The URL carries the checksum; say where without it.
		return response{}, fmt.Errorf("%w: %s: %w", ErrAPI, call, redactURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return response{}, fmt.Errorf("%w: %s: read answer: %w", ErrAPI, call, err)
	}
	if resp.StatusCode != http.StatusOK {
		return response{}, fmt.Errorf("%w: %s: HTTP %d", ErrAPI, call, resp.StatusCode)
	}
	if len(body) > maxResponseBytes {
		return response{}, fmt.Errorf("%w: %s: answer larger than %d bytes", ErrResponse, call, maxResponseBytes)
	}
	r, err := parseResponse(body)
	if err != nil {
		return response{}, fmt.Errorf("%s: %w", call, err)
	}
	return r, nil
}

// parseResponse reads one <response> document. Anything else (HTML,
// JSON, truncated XML, trailing garbage) is ErrResponse; a FAILED answer
// is ErrFailed with BigBlueButton's messageKey.
func parseResponse(body []byte) (response, error) {
	var r response
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&r); err != nil {
		return response{}, fmt.Errorf("%w: %v", ErrResponse, describeXMLError(body, err))
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return response{}, fmt.Errorf("%w: after </response>: %v", ErrResponse, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return response{}, fmt.Errorf("%w: text after </response>", ErrResponse)
			}
		case xml.Comment, xml.ProcInst:
		default:
			return response{}, fmt.Errorf("%w: content after </response>", ErrResponse)
		}
	}
	switch strings.TrimSpace(r.ReturnCode) {
	case "SUCCESS":
		return r, nil
	case "FAILED":
		return response{}, fmt.Errorf("%w: %s: %s", ErrFailed, clip(r.MessageKey), clip(r.Message))
	default:
		return response{}, fmt.Errorf("%w: returncode %q", ErrResponse, clip(r.ReturnCode))
	}
}

func describeXMLError(body []byte, err error) string {
	head := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 64)])))
	if strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") {
		return "the server answered an HTML page"
	}
	if len(head) == 0 {
		return "empty answer"
	}
	var se xml.UnmarshalError
	if errors.As(err, &se) {
		return "expected <response>: " + clip(string(se))
	}
	return clip(err.Error())
}

// checkJoinURL accepts an absolute https URL (http only on loopback) on a
// configured host.
func (a *Adapter) checkJoinURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("%w: join answered without a url", ErrJoinURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%w: %q is not an absolute URL", ErrJoinURL, clip(raw))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return "", fmt.Errorf("%w: scheme %q (https required)", ErrJoinURL, clip(u.Scheme))
	}
	if !a.hosts[strings.ToLower(u.Host)] && !a.hosts[strings.ToLower(u.Hostname())] {
		return "", fmt.Errorf("%w: host %q is not in redirect_hosts", ErrJoinURL, clip(u.Host))
	}
	return u.String(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip makes server-supplied text safe for an error and a log line.
func clip(s string) string {
	const max = 120
	b := make([]byte, 0, min(len(s), max))
	for _, r := range s {
		if len(b) >= max {
			b = append(b, "..."...)
			break
		}
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// redactURLError drops the URL (with its checksum) from a client error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redact(ue.URL), ue.Err)
	}
	return err
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(url)"
	}
	u.RawQuery = ""
	return u.String()
}
