package livekit

import (
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/upstream/internal/claim"
)

// personGrant is the only video grant a person ever gets. It has no field
// for roomAdmin, roomCreate, roomList, roomRecord, hidden, recorder or
// agent, so no bug elsewhere can mint one. The permission fields are not
// omitempty: LiveKit reads an absent canPublish as true.
type personGrant struct {
	RoomJoin             bool     `json:"roomJoin"`
	Room                 string   `json:"room"`
	CanPublish           bool     `json:"canPublish"`
	CanSubscribe         bool     `json:"canSubscribe"`
	CanPublishData       bool     `json:"canPublishData"`
	CanPublishSources    []string `json:"canPublishSources,omitempty"`
	CanUpdateOwnMetadata bool     `json:"canUpdateOwnMetadata"`
}

type personClaims struct {
	jwt.Claims
	Name  string      `json:"name,omitempty"`
	Video personGrant `json:"video"`
	// Attributes are set on the participant when it joins; LiveKit lets
	// only a token with canUpdateOwnMetadata change them, which a person's
	// never has.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// adminGrant is for the gateway's own room-service calls, for one room.
type adminGrant struct {
	RoomAdmin bool   `json:"roomAdmin"`
	Room      string `json:"room"`
}

type adminClaims struct {
	jwt.Claims
	Video adminGrant `json:"video"`
}

var allSources = []string{"camera", "microphone", "screen_share", "screen_share_audio"}

// grantFor maps the policy's role to what LiveKit lets the person do. A
// viewer watches: no media, no data messages.
func grantFor(role, room string) (personGrant, error) {
	g := personGrant{RoomJoin: true, Room: room, CanSubscribe: true}
	switch role {
	case "host", "participant":
		g.CanPublish, g.CanPublishData, g.CanPublishSources = true, true, allSources
	case "viewer":
	default:
		return personGrant{}, fmt.Errorf("%w %q", ErrUnknownRole, role)
	}
	return g, nil
}

// token mints the access token of one admission; e2ee marks a room that
// requires end-to-end encryption.
func (a *Adapter) token(p admission.Participant, e2ee bool) (string, error) {
	if p.Room == "" {
		return "", ErrOutsideRoom
	}
	g, err := grantFor(p.Role, p.Room)
	if err != nil {
		return "", err
	}
	now := a.opts.Clock()
	c := personClaims{
		Claims: jwt.Claims{
			Issuer:    a.opts.APIKey,
			Subject:   a.Identity(p),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(a.opts.TokenTTL)),
			ID:        claim.NewTokenID(),
		},
		Name:  claim.DisplayName(p.Identity.DisplayName()),
		Video: g,
	}
	if e2ee {
		c.Attributes = map[string]string{E2EEAttribute: "required"}
	}
	tok, err := sign(a.signer, c)
	if err != nil {
		return "", fmt.Errorf("livekit: sign token: %w", err)
	}
	return tok, nil
}

// adminToken authorises the gateway's room-service calls for one room for
// one minute.
func (a *Adapter) adminToken(room string) (string, error) {
	now := a.opts.Clock()
	c := adminClaims{
		Claims: jwt.Claims{
			Issuer:    a.opts.APIKey,
			Subject:   "meetguard-gateway",
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(60e9)),
			ID:        claim.NewTokenID(),
		},
		Video: adminGrant{RoomAdmin: true, Room: room},
	}
	tok, err := sign(a.signer, c)
	if err != nil {
		return "", fmt.Errorf("livekit: sign admin token: %w", err)
	}
	return tok, nil
}

// sign serialises claims once and signs them: jwt.Signed(...).Claims
// re-encodes through a map, which costs more than the HMAC.
func sign(s jose.Signer, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
