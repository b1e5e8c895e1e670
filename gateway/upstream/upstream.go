// Package upstream builds the adapter for each configured meeting server
// (upstreams[].kind): livekit, jitsi and bbb mint that server's own join
// credential after admission; generic needs none, since the gateway's
// assertion and identity headers are always set.
//
// It must never build an adapter from an unvalidated block or with a
// secret shorter than its kind requires, and it never contacts a meeting
// server while building: a server that is down must not stop the gateway
// from starting.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/upstream/bbb"
	"github.com/meetguard/meetguard/gateway/upstream/jitsi"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
)

// ErrKind means an upstream's kind or its block is missing or unknown.
var ErrKind = errors.New("upstream: bad kind")

// Options carries what adapters need beyond their config block.
type Options struct {
	Logger *zap.Logger
	// OnLiveKitEvent receives verified, de-duplicated LiveKit webhooks
	// about participants (joined, left, connection aborted). An error
	// answers 500 so that LiveKit retries. Nil: verified and dropped.
	OnLiveKitEvent func(ctx context.Context, e livekit.Event) error
	// LiveKitE2EE reports whether a room requires end-to-end encryption,
	// which LiveKit tokens then say (livekit.Options.E2EERequired).
	LiveKitE2EE func(ctx context.Context, room string) (bool, error)
	// BBBRoom returns a room's settings for BigBlueButton's create; nil
	// uses DefaultCapacity.
	BBBRoom func(ctx context.Context, room string) (bbb.Settings, error)
	// DefaultCapacity is rooms.default_capacity (BigBlueButton's
	// maxParticipants when BBBRoom gives none).
	DefaultCapacity int
	// HTTPClient, when set, replaces the adapters' default clients for
	// calls to meeting servers (tests; custom TLS roots). Its Timeout is
	// kept; the kinds' http_timeout applies only to the default client.
	HTTPClient *http.Client
}

// New returns the adapter of one validated upstream, or nil for generic.
func New(ctx context.Context, u config.Upstream, opts Options) (admission.Adapter, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("upstream", u.Name), zap.String("kind", u.Kind))
	switch u.Kind {
	case "", "generic":
		return nil, nil
	case "livekit":
		c := u.LiveKit
		if c == nil {
			return nil, fmt.Errorf("%w: upstream %s: livekit block missing", ErrKind, u.Name)
		}
		return built(livekit.New(ctx, livekit.Options{
			Upstream: u.Name, URL: u.URL, RoomPath: u.Rooms.Path,
			APIKey: c.APIKey, APISecret: c.APISecret, APIURL: c.APIURL, TokenTTL: c.TokenTTL,
			HTTPClient: client(opts.HTTPClient, c.HTTPTimeout), OnEvent: opts.OnLiveKitEvent, E2EERequired: opts.LiveKitE2EE, Logger: log,
		}))
	case "jitsi":
		c := u.Jitsi
		if c == nil {
			return nil, fmt.Errorf("%w: upstream %s: jitsi block missing", ErrKind, u.Name)
		}
		o := jitsi.Options{
			Upstream: u.Name, URL: u.URL, RoomPath: u.Rooms.Path,
			AppID: c.AppID, Audience: c.Audience, Subject: c.Subject, AppSecret: c.AppSecret, KeyID: c.KeyID,
			TokenTTL: c.TokenTTL, ViewersAsMembers: c.Viewers == "member", Logger: log,
		}
		if c.PrivateKeyFile != "" {
			k, err := jitsi.LoadPrivateKey(c.PrivateKeyFile)
			if err != nil {
				return nil, err
			}
			o.PrivateKey = k
		}
		return built(jitsi.New(ctx, o))
	case "bbb":
		c := u.BBB
		if c == nil {
			return nil, fmt.Errorf("%w: upstream %s: bbb block missing", ErrKind, u.Name)
		}
		return built(bbb.New(ctx, bbb.Options{
			Upstream: u.Name, APIURL: c.APIURL, Secret: c.Secret, Checksum: c.Checksum,
			GuestPolicy: c.GuestPolicy, RedirectHosts: c.RedirectHosts, DefaultCapacity: opts.DefaultCapacity,
			Lock: bbb.Lock{
				DisableCam: c.Lock.DisableCam, DisableMic: c.Lock.DisableMic, DisablePrivateChat: c.Lock.DisablePrivateChat,
				DisablePublicChat: c.Lock.DisablePublicChat, DisableNotes: c.Lock.DisableNotes, HideUserList: c.Lock.HideUserList,
			},
			Room: opts.BBBRoom, HTTPClient: client(opts.HTTPClient, c.HTTPTimeout), Logger: log,
		}))
	}
	return nil, fmt.Errorf("%w: upstream %s: unknown kind %q", ErrKind, u.Name, u.Kind)
}

// built returns a kind's adapter as a admission.Adapter, and a nil interface
// (not a typed nil pointer) on error, so callers can test a == nil.
func built[A admission.Adapter](a A, err error) (admission.Adapter, error) {
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	return a, nil
}

func client(c *http.Client, timeout time.Duration) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: timeout}
}

// Endpoint paths the gateway serves for adapters, without user
// authentication: the callers are servers that prove themselves another
// way (LiveKit signs webhooks) or fetch public keys (Prosody).
const endpointRoot = "/.well-known/meetguard/upstreams/"

// WebhookPath is where a LiveKit upstream's webhook receiver belongs:
// LiveKit's webhook.urls points at public_url + this path.
func WebhookPath(upstream string) string {
	return endpointRoot + upstream + "/livekit-webhook"
}

// KeyServerPath is the prefix under which a Jitsi RS256 upstream serves
// its public key: Prosody's asap_key_server is public_url + this path
// (without the trailing slash).
func KeyServerPath(upstream string) string {
	return endpointRoot + upstream + "/asap/"
}

// Endpoints are the handlers an adapter needs mounted, by path (exact for
// a webhook, prefix for a key server), or nil.
func Endpoints(upstream string, a admission.Adapter) map[string]http.Handler {
	switch a := a.(type) {
	case *livekit.Adapter:
		return map[string]http.Handler{WebhookPath(upstream): a.Webhook()}
	case *jitsi.Adapter:
		if a.KeyPath() == "" {
			return nil
		}
		prefix := KeyServerPath(upstream)
		return map[string]http.Handler{prefix: http.StripPrefix(strings.TrimSuffix(prefix, "/"), a.KeyServer())}
	}
	return nil
}
