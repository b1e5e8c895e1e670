package e2eeapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// The binding of each admission to its credential, and the keys waiting for their holder's admission, live in
// the e2ee Store beside the Authority's state, so that every gateway node sharing the Store serves every member
// and reconciles the roster from the same bindings: a kick handled on one node removes a member whose key was
// registered through another. A meeting's maps (members, pending) mirror the Store while its lock is held:
// lockMeeting loads them, and every change is written through before the map changes.

// sharedPrefix is where a meeting instance's bindings live: m/{participant} and p/{hash of the session}.
func sharedPrefix(room, instance string) string {
	return "e2ee-bind/" + url.PathEscape(room) + "/" + url.PathEscape(instance) + "/"
}

func memberKey(room, instance, pid string) string {
	return sharedPrefix(room, instance) + "m/" + url.PathEscape(pid)
}

func pendingName(room, instance, session string) string {
	sum := sha256.Sum256([]byte(session)) // the session key names a person; the store needs only a handle
	return sharedPrefix(room, instance) + "p/" + hex.EncodeToString(sum[:16])
}

// sharedRecord is a binding or a pending key as stored.
type sharedRecord struct {
	Credential []byte `json:"c"`
	KEM        uint16 `json:"k"`
	Session    string `json:"s"`
	Subject    string `json:"u,omitempty"` // pending only
	ExpiresMS  int64  `json:"e,omitempty"` // pending only
}

func (r *sharedRecord) credential() (*e2ee.Credential, error) {
	c, err := e2ee.ParseCredential(r.Credential)
	if err != nil {
		return nil, fmt.Errorf("%w: stored binding: %w", errUnavailable, err)
	}
	return c, nil
}

func storeErr(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", errUnavailable, op, err)
}

// saveMember binds admission pid to b on every node; m is locked.
func (h *Handler) saveMember(ctx context.Context, m *meeting, pid string, b *binding) error {
	raw, err := json.Marshal(sharedRecord{Credential: b.cred.Bytes(), KEM: uint16(b.kem), Session: b.session})
	if err != nil {
		return err
	}
	if err := h.opts.Store.Put(ctx, memberKey(m.room, m.authority.Instance(), pid), raw, 0); err != nil {
		return storeErr("bind credential", err)
	}
	m.members[pid] = b
	// Which admission holds which credential: what a kick that leaves a credential in the roster is checked against.
	h.log.Info("e2ee: credential bound to admission", zap.String("room", m.room), zap.String("participant", pid),
		zap.String("credential", b.cred.Hash().Short()))
	return nil
}

// dropMember unbinds admission pid on every node; m is locked.
func (h *Handler) dropMember(ctx context.Context, m *meeting, pid string) error {
	b := m.members[pid]
	delete(m.members, pid)
	if m.authority == nil {
		return nil
	}
	if b != nil {
		h.log.Info("e2ee: credential unbound from admission", zap.String("room", m.room), zap.String("participant", pid),
			zap.String("credential", b.cred.Hash().Short()))
	}
	if _, err := h.opts.Store.Take(ctx, memberKey(m.room, m.authority.Instance(), pid)); err != nil && !errors.Is(err, e2eestore.ErrNotFound) {
		return storeErr("unbind credential", err)
	}
	return nil
}

// savePending keeps a key registered before its holder's admission, for every node; m is locked.
func (h *Handler) savePending(ctx context.Context, m *meeting, session string, pk *pendingKey) error {
	raw, err := json.Marshal(sharedRecord{Credential: pk.cred.Bytes(), KEM: uint16(pk.kem), Session: session,
		Subject: string(pk.subject), ExpiresMS: pk.expires.UnixMilli()})
	if err != nil {
		return err
	}
	ttl := pk.expires.Sub(h.opts.Clock.Now())
	if ttl <= 0 {
		return nil
	}
	if err := h.opts.Store.Put(ctx, pendingName(m.room, m.authority.Instance(), session), raw, ttl); err != nil {
		return storeErr("keep pending key", err)
	}
	m.pending[session] = pk
	return nil
}

// dropPending forgets the key session registered before admission; m is locked.
func (h *Handler) dropPending(ctx context.Context, m *meeting, session string) error {
	delete(m.pending, session)
	if m.authority == nil {
		return nil
	}
	if _, err := h.opts.Store.Take(ctx, pendingName(m.room, m.authority.Instance(), session)); err != nil && !errors.Is(err, e2eestore.ErrNotFound) {
		return storeErr("drop pending key", err)
	}
	return nil
}

// loadShared makes m follow the Store: if the room's meeting instance ended or changed on another node, m
// forgets its Authority; then m's bindings and pending keys are read again. m is locked.
func (h *Handler) loadShared(ctx context.Context, m *meeting) error {
	if m.authority == nil {
		return nil
	}
	inst, err := h.opts.Store.Get(ctx, instanceKey(m.room))
	switch {
	case errors.Is(err, e2eestore.ErrNotFound) || (err == nil && string(inst) != m.authority.Instance()):
		m.authority, m.members, m.pending = nil, map[string]*binding{}, map[string]*pendingKey{}
		return nil
	case err != nil:
		return storeErr("meeting instance", err)
	}
	prefix := sharedPrefix(m.room, m.authority.Instance())
	entries, err := h.opts.Store.List(ctx, prefix)
	if err != nil {
		return storeErr("load bindings", err)
	}
	members, pending := map[string]*binding{}, map[string]*pendingKey{}
	for _, e := range entries {
		var rec sharedRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return storeErr("load bindings", err)
		}
		cred, err := rec.credential()
		if err != nil {
			return err
		}
		name := e.Key[len(prefix):]
		switch {
		case len(name) > 2 && name[:2] == "m/":
			pid, err := url.PathUnescape(name[2:])
			if err != nil {
				return storeErr("load bindings", err)
			}
			members[pid] = &binding{cred: cred, kem: e2ee.KEM(rec.KEM), session: rec.Session}
		case len(name) > 2 && name[:2] == "p/":
			pending[rec.Session] = &pendingKey{cred: cred, kem: e2ee.KEM(rec.KEM), subject: rooms.SubjectKey(rec.Subject),
				expires: time.UnixMilli(rec.ExpiresMS)}
		}
	}
	m.members, m.pending = members, pending
	return nil
}

// boundCredential reads the credential bound to admission pid in the room's current instance, without the
// meeting's lock: the fast path of every member request on every node.
func (h *Handler) boundCredential(ctx context.Context, room, instance, pid string) (e2ee.Hash, bool, error) {
	raw, err := h.opts.Store.Get(ctx, memberKey(room, instance, pid))
	if errors.Is(err, e2eestore.ErrNotFound) {
		return e2ee.Hash{}, false, nil
	}
	if err != nil {
		return e2ee.Hash{}, false, storeErr("read binding", err)
	}
	var rec sharedRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return e2ee.Hash{}, false, storeErr("read binding", err)
	}
	cred, err := rec.credential()
	if err != nil {
		return e2ee.Hash{}, false, err
	}
	return cred.Hash(), true, nil
}

// sharedDevices returns the credentials a session registered in room through any node: the bound ones and
// the one waiting for admission.
func (h *Handler) sharedDevices(ctx context.Context, room, session string) ([]sessionCredential, error) {
	inst, err := h.opts.Store.Get(ctx, instanceKey(room))
	if errors.Is(err, e2eestore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("meeting instance", err)
	}
	entries, err := h.opts.Store.List(ctx, sharedPrefix(room, string(inst)))
	if err != nil {
		return nil, storeErr("load bindings", err)
	}
	var out []sessionCredential
	for _, e := range entries {
		var rec sharedRecord
		if json.Unmarshal(e.Value, &rec) != nil || rec.Session != session {
			continue
		}
		cred, err := rec.credential()
		if err != nil {
			continue
		}
		sc := sessionCredential{cred: cred, kem: e2ee.KEM(rec.KEM)}
		if rec.ExpiresMS != 0 {
			sc.pending = time.UnixMilli(rec.ExpiresMS)
		}
		out = append(out, sc)
	}
	return out, nil
}
