package livekit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
)

// ErrRoomService wraps every failed room-service call.
var ErrRoomService = errors.New("livekit: room service call failed")

// RemoveParticipant removes one admission from the LiveKit room, so a
// kicked person's media stops and not only their signalling. A participant
// already gone is not an error. Without ParticipantID and SessionID (a ban
// of a person rather than of one admission), every identity minted for
// that person in the room is removed.
func (a *Adapter) RemoveParticipant(ctx context.Context, p admission.Participant) error {
	if p.Room == "" {
		return fmt.Errorf("%w: no room", ErrRoomService)
	}
	if p.ParticipantID != "" || p.Identity.SessionID != "" {
		return a.remove(ctx, p.Room, a.Identity(p))
	}
	if p.Identity.Subject == "" {
		return fmt.Errorf("%w: no participant to remove", ErrRoomService)
	}
	idents, err := a.listParticipants(ctx, p.Room)
	if err != nil {
		return err
	}
	prefix := a.personPrefix(p.Identity)
	var errs []error
	for _, ident := range idents {
		if strings.HasPrefix(ident, prefix) {
			errs = append(errs, a.remove(ctx, p.Room, ident))
		}
	}
	return errors.Join(errs...)
}

// permission is LiveKit's ParticipantPermission as UpdateParticipant takes
// it (protobuf JSON: sources are enum names). Not omitempty: a field left
// out would keep the participant's old value.
type permission struct {
	CanSubscribe      bool     `json:"canSubscribe"`
	CanPublish        bool     `json:"canPublish"`
	CanPublishData    bool     `json:"canPublishData"`
	CanPublishSources []string `json:"canPublishSources"`
	CanUpdateMetadata bool     `json:"canUpdateMetadata"`
}

// UpdateRole gives a connected admission the rights of its new role (the
// grant a token for that role carries), on the server, at once: a viewer's
// published tracks stop. An admission not connected to the server is not
// an error: its next token carries the role.
func (a *Adapter) UpdateRole(ctx context.Context, p admission.Participant) error {
	if p.Room == "" {
		return fmt.Errorf("%w: no room", ErrRoomService)
	}
	if p.ParticipantID == "" && p.Identity.SessionID == "" {
		return fmt.Errorf("%w: no participant to update", ErrRoomService)
	}
	g, err := grantFor(p.Role, p.Room)
	if err != nil {
		return err
	}
	perm := permission{CanSubscribe: g.CanSubscribe, CanPublish: g.CanPublish, CanPublishData: g.CanPublishData, CanPublishSources: []string{}}
	for _, src := range g.CanPublishSources {
		perm.CanPublishSources = append(perm.CanPublishSources, strings.ToUpper(src))
	}
	ident := a.Identity(p)
	err = a.call(ctx, "UpdateParticipant", p.Room, map[string]any{"room": p.Room, "identity": ident, "permission": perm}, nil)
	var te *twirpError
	if errors.As(err, &te) && te.Code == "not_found" {
		return nil
	}
	if err == nil {
		a.opts.Logger.Info("livekit participant role changed", zap.String("upstream", a.opts.Upstream), zap.String("room", p.Room),
			zap.String("identity", ident), zap.String("role", p.Role))
	}
	return err
}

func (a *Adapter) remove(ctx context.Context, room, ident string) error {
	err := a.call(ctx, "RemoveParticipant", room, map[string]string{"room": room, "identity": ident}, nil)
	var te *twirpError
	if errors.As(err, &te) && te.Code == "not_found" {
		return nil
	}
	if err == nil {
		a.opts.Logger.Info("livekit participant removed", zap.String("upstream", a.opts.Upstream), zap.String("room", room), zap.String("identity", ident))
	}
	return err
}

func (a *Adapter) listParticipants(ctx context.Context, room string) ([]string, error) {
	var res struct {
		Participants []struct {
			Identity string `json:"identity"`
		} `json:"participants"`
	}
	if err := a.call(ctx, "ListParticipants", room, map[string]string{"room": room}, &res); err != nil {
		var te *twirpError
		if errors.As(err, &te) && te.Code == "not_found" {
			return nil, nil
		}
		return nil, err
	}
	out := make([]string, 0, len(res.Participants))
	for _, p := range res.Participants {
		out = append(out, p.Identity)
	}
	return out, nil
}

// twirpError is an error answer of the Twirp protocol.
type twirpError struct {
	Status int
	Code   string `json:"code"`
	Msg    string `json:"msg"`
}

func (e *twirpError) Error() string {
	return fmt.Sprintf("twirp %d %s: %s", e.Status, e.Code, e.Msg)
}

// call posts a JSON Twirp request with an admin token for room only.
func (a *Adapter) call(ctx context.Context, method, room string, in, out any) error {
	tok, err := a.adminToken(room)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRoomService, method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.apiURL+"/twirp/livekit.RoomService/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRoomService, method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRoomService, method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: read answer: %w", ErrRoomService, method, err)
	}
	if resp.StatusCode != http.StatusOK {
		te := &twirpError{Status: resp.StatusCode}
		if json.Unmarshal(data, te) != nil || te.Code == "" {
			te.Code, te.Msg = "unknown", http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("%w: %s: %w", ErrRoomService, method, te)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s: answer is not JSON: %w", ErrRoomService, method, err)
	}
	return nil
}
