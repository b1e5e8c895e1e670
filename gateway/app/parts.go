package app

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/policy"
)

// policyReady adapts the engine's status to a readiness check.
type policyReady struct{ e *policy.Engine }

func (p policyReady) Ready() error {
	st := p.e.Status()
	if !st.Loaded {
		return errors.New("no policy revision loaded")
	}
	return nil
}

// loadAssertionKey reads a PKCS#8 Ed25519 key, or returns nil so that a
// fresh key is drawn (upstreams fetch it from the JWKS endpoint).
func loadAssertionKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("assertion.key_file: %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("assertion.key_file: %s is not an Ed25519 key", path)
	}
	return ek, nil
}

// e2eeDevices breaks the construction cycle: the rooms API asks the e2ee
// API for device facts, the e2ee API asks the rooms API who is a member.
type e2eeDevices struct {
	h atomic.Pointer[e2eeapi.Handler]
}

// E2EEStatus is the room's end-to-end state for its host console.
func (d *e2eeDevices) E2EEStatus(ctx context.Context, room string) (roomsapi.E2EEState, error) {
	h := d.h.Load()
	if h == nil {
		return roomsapi.E2EEState{}, nil
	}
	st, err := h.RoomStatus(ctx, room)
	return roomsapi.E2EEState{Active: st.Active, Epoch: st.Epoch, Members: st.Members, Locked: st.Locked}, err
}

func (d *e2eeDevices) DeviceFacts(ctx context.Context, room string, id identity.Identity) (policy.Device, error) {
	if h := d.h.Load(); h != nil {
		return h.DeviceFacts(ctx, room, id)
	}
	return policy.Device{}, nil
}
