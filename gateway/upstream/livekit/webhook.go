package livekit

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
)

// EventKind is what happened in a room.
type EventKind string

// The webhook events the adapter reports; LiveKit's other events are
// verified and acknowledged but not reported. LiveKit sends
// participant_joined only once media connects (ICE), and
// participant_connection_aborted instead of participant_left for someone
// who signalled but never connected media: treat it as left.
const (
	ParticipantJoined            EventKind = "participant_joined"
	ParticipantLeft              EventKind = "participant_left"
	ParticipantConnectionAborted EventKind = "participant_connection_aborted"
)

// Event is a verified LiveKit webhook about a participant.
type Event struct {
	// ID is LiveKit's event id; each id is reported once per gateway node.
	ID       string
	Kind     EventKind
	Upstream string
	Room     string
	// Identity is the LiveKit identity; Person is its person pseudonym
	// (Adapter.Person) when the gateway minted it, and "" otherwise: a
	// participant the gateway did not mint a token for is worth an alert.
	Identity       string
	Person         string
	ParticipantSID string
	Name           string
	// At is when LiveKit created the event.
	At time.Time
}

// Errors of webhook verification, for tests and logs; the sender only sees
// the status code.
var (
	ErrWebhookAuth = errors.New("livekit webhook: bad authorization")
	ErrWebhookBody = errors.New("livekit webhook: bad body")
)

// maxWebhookBytes bounds a webhook body; LiveKit's are a few KiB.
const maxWebhookBytes = 1 << 20

// webhookLeeway matches LiveKit's own token leeway.
const webhookLeeway = time.Minute

type webhookClaims struct {
	jwt.Claims
	Sha256 string `json:"sha256"`
}

// webhookEvent is the part of LiveKit's WebhookEvent (protojson) the
// gateway reads.
type webhookEvent struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	// CreatedAt is an int64, which protojson writes as a string.
	CreatedAt json.RawMessage `json:"createdAt"`
	Room      *struct {
		Name string `json:"name"`
	} `json:"room"`
	Participant *struct {
		SID      string `json:"sid"`
		Identity string `json:"identity"`
		Name     string `json:"name"`
	} `json:"participant"`
}

// Webhook is the receiver for LiveKit's webhooks (config: webhook.urls
// pointing at where the gateway mounts it, webhook.api_key = the adapter's
// API key). Mount it without user authentication: the request proves
// itself with a JWT signed by the API secret over the body's SHA-256.
func (a *Adapter) Webhook() http.Handler {
	return http.HandlerFunc(a.serveWebhook)
}

func (a *Adapter) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBytes+1))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if len(body) > maxWebhookBytes {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ev, err := a.verifyWebhook(r.Header.Get("Authorization"), body)
	if err != nil {
		a.opts.Logger.Warn("livekit webhook refused", zap.String("upstream", a.opts.Upstream), zap.Error(err))
		status := http.StatusUnauthorized
		if errors.Is(err, ErrWebhookBody) {
			status = http.StatusBadRequest
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	if ev == nil || a.opts.OnEvent == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if !a.webhooks.claim(ev.ID, a.opts.Clock()) {
		w.WriteHeader(http.StatusOK) // a retry or a replay: already handled
		return
	}
	if err := a.opts.OnEvent(r.Context(), *ev); err != nil {
		a.webhooks.release(ev.ID)
		a.opts.Logger.Error("livekit webhook event not handled", zap.String("upstream", a.opts.Upstream), zap.String("event_id", ev.ID), zap.Error(err))
		http.Error(w, "event not handled", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// verifyWebhook checks the Authorization JWT (HS256 by the API secret,
// iss the API key, unexpired, sha256 = base64(SHA-256(body))) and parses
// the body. It returns nil, nil for a verified event the adapter does not
// report.
func (a *Adapter) verifyWebhook(authz string, body []byte) (*Event, error) {
	raw := strings.TrimSpace(strings.TrimPrefix(authz, "Bearer "))
	if raw == "" {
		return nil, fmt.Errorf("%w: no token", ErrWebhookAuth)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebhookAuth, err)
	}
	var c webhookClaims
	if err := tok.Claims([]byte(a.opts.APISecret), &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebhookAuth, err)
	}
	if c.Expiry == nil {
		return nil, fmt.Errorf("%w: token has no exp", ErrWebhookAuth)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: a.opts.APIKey, Time: a.opts.Clock()}, webhookLeeway); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebhookAuth, err)
	}
	sum := sha256.Sum256(body)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(c.Sha256), []byte(want)) != 1 {
		return nil, fmt.Errorf("%w: body does not match the token's sha256", ErrWebhookAuth)
	}
	return a.parseWebhook(body)
}

func (a *Adapter) parseWebhook(body []byte) (*Event, error) {
	var we webhookEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&we); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebhookBody, err)
	}
	if we.ID == "" || we.Event == "" {
		return nil, fmt.Errorf("%w: event or id missing", ErrWebhookBody)
	}
	kind := EventKind(we.Event)
	switch kind {
	case ParticipantJoined, ParticipantLeft, ParticipantConnectionAborted:
	default:
		return nil, nil
	}
	if we.Room == nil || we.Room.Name == "" || we.Participant == nil || we.Participant.Identity == "" {
		return nil, fmt.Errorf("%w: %s without room or participant", ErrWebhookBody, kind)
	}
	at, err := unixField(we.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("%w: createdAt: %w", ErrWebhookBody, err)
	}
	return &Event{
		ID: we.ID, Kind: kind, Upstream: a.opts.Upstream, Room: we.Room.Name,
		Identity: we.Participant.Identity, Person: personOf(we.Participant.Identity),
		ParticipantSID: we.Participant.SID, Name: we.Participant.Name, At: at,
	}, nil
}

// unixField reads protojson's int64 (a quoted or bare number of seconds).
func unixField(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 {
		return time.Time{}, nil
	}
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0).UTC(), nil
}

// seenEvents remembers event ids for a while so a retried or replayed
// webhook is reported once. It is bounded: when full of live entries it
// forgets them all, since a duplicate joined/left is harmless and an
// unbounded map is not.
type seenEvents struct {
	ttl time.Duration
	max int

	mu  sync.Mutex
	ids map[string]time.Time
}

func newSeenEvents(ttl time.Duration, max int) *seenEvents {
	return &seenEvents{ttl: ttl, max: max, ids: map[string]time.Time{}}
}

// claim reports whether id is new, and marks it seen.
func (s *seenEvents) claim(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.ids[id]; ok && now.Before(exp) {
		return false
	}
	if len(s.ids) >= s.max {
		for k, exp := range s.ids {
			if !now.Before(exp) {
				delete(s.ids, k)
			}
		}
		if len(s.ids) >= s.max {
			clear(s.ids)
		}
	}
	s.ids[id] = now.Add(s.ttl)
	return true
}

// release forgets id after its handling failed, so a retry is handled.
func (s *seenEvents) release(id string) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}
