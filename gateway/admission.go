package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/policy"
)

// Decider is the admission policy.
type Decider interface {
	Decide(ctx context.Context, in policy.Input) policy.Decision
}

// RoomFacts tells the policy what the gateway knows about a room. Until a
// room store exists, ConfigRooms answers from config defaults.
type RoomFacts interface {
	RoomFacts(ctx context.Context, room string, who identity.Identity) (policy.Room, error)
}

// ConfigRooms describes every room by the configured defaults.
type ConfigRooms struct {
	Capacity     int
	LobbyEnabled bool
}

// RoomFacts implements RoomFacts.
func (c ConfigRooms) RoomFacts(_ context.Context, room string, _ identity.Identity) (policy.Room, error) {
	return policy.Room{ID: room, Exists: true, Capacity: c.Capacity, LobbyEnabled: c.LobbyEnabled}, nil
}

// PolicyAdmitterOptions configures a PolicyAdmitter.
type PolicyAdmitterOptions struct {
	Policy Decider
	Rooms  RoomFacts
	Audit  Auditor
	Logger *zap.Logger
	// DefaultTTL bounds how long a decision is reused for the same session
	// and room when the policy sets no ttl_seconds. Default 60s.
	DefaultTTL time.Duration
	Clock      func() time.Time
}

// PolicyAdmitter admits room requests by asking the policy, and writes
// every fresh decision to the audit log before acting on it.
type PolicyAdmitter struct {
	opts PolicyAdmitterOptions

	mu    sync.Mutex
	cache map[admissionKey]cachedAdmission
}

type admissionKey struct{ session, room string }

type cachedAdmission struct {
	adm     Admission
	expires time.Time
}

// NewPolicyAdmitter returns a PolicyAdmitter.
func NewPolicyAdmitter(opts PolicyAdmitterOptions) (*PolicyAdmitter, error) {
	if opts.Policy == nil || opts.Rooms == nil || opts.Audit == nil {
		return nil, errors.New("policy admitter: Policy, Rooms and Audit are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.DefaultTTL == 0 {
		opts.DefaultTTL = time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &PolicyAdmitter{opts: opts, cache: map[admissionKey]cachedAdmission{}}, nil
}

// Forget drops cached admissions of a session (logout) or, with an empty
// session, of a whole room (lock, kick).
func (p *PolicyAdmitter) Forget(session, room string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.cache {
		if (session == "" || k.session == session) && (room == "" || k.room == room) {
			delete(p.cache, k)
		}
	}
}

// AdmitRequest implements Admitter.
func (p *PolicyAdmitter) AdmitRequest(ctx context.Context, req RoomRequest) (Admission, error) {
	now := p.opts.Clock()
	key := admissionKey{req.Identity.SessionID, req.Room}
	p.mu.Lock()
	c, ok := p.cache[key]
	p.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.adm, nil
	}
	room, err := p.opts.Rooms.RoomFacts(ctx, req.Room, req.Identity)
	if err != nil {
		return Admission{}, fmt.Errorf("room facts: %w", err)
	}
	in := policy.Input{
		Identity: PolicyIdentity(req.Identity),
		Room:     room,
		Request: policy.Request{
			Time:      now.UTC(),
			IP:        request.From(ctx).ClientIP,
			UserAgent: req.HTTP.UserAgent(),
			Method:    req.HTTP.Method,
			Path:      req.HTTP.URL.EscapedPath(),
			Origin:    req.HTTP.Header.Get("Origin"),
		},
	}
	d := p.opts.Policy.Decide(ctx, in)
	adm := Admission{Role: d.Role, UserMessage: d.UserMessage, ParticipantID: req.Identity.SessionID + "/" + req.Room}
	outcome := "deny"
	switch {
	case d.Allow && !d.Lobby:
		adm.Outcome, outcome = Admitted, "allow"
	case d.Lobby:
		adm.Outcome, outcome = Waiting, "lobby"
	default:
		adm.Outcome = Denied
	}
	if err := p.opts.Audit.Record(ctx, "admission.decision",
		zap.String("room", req.Room),
		zap.String("subject", req.Identity.Subject),
		zap.String("issuer", req.Identity.Issuer),
		zap.String("decision", outcome),
		zap.String("role", d.Role),
		zap.Strings("reasons", d.Reasons),
		zap.String("policy_revision", d.Revision),
		zap.String("decision_id", d.DecisionID),
		zap.String("client_ip", in.Request.IP),
		zap.Any("input", in),
		zap.Any("result", d),
	); err != nil {
		// Nothing is admitted unrecorded.
		return Admission{}, fmt.Errorf("audit admission: %w", err)
	}
	if adm.Outcome == Admitted {
		ttl := p.opts.DefaultTTL
		if d.TTLSeconds > 0 && time.Duration(d.TTLSeconds)*time.Second < ttl {
			ttl = time.Duration(d.TTLSeconds) * time.Second
		}
		p.mu.Lock()
		if len(p.cache) > 100_000 {
			clear(p.cache)
		}
		p.cache[key] = cachedAdmission{adm: adm, expires: now.Add(ttl)}
		p.mu.Unlock()
	}
	return adm, nil
}

// PolicyIdentity is the identity part of the policy input.
func PolicyIdentity(id identity.Identity) policy.Identity {
	pi := policy.Identity{
		Iss: id.Issuer, Sub: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Name: id.Name, Groups: id.Groups, ACR: id.ACR, AMR: id.AMR, Via: string(id.Via),
	}
	if !id.AuthTime.IsZero() {
		pi.AuthTime = id.AuthTime.Unix()
	}
	return pi
}
