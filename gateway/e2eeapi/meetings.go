package e2eeapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/policy"
)

// meeting is the key exchange of one room's current meeting instance. Its mutex orders everything that
// changes who is in the roster: registrations, admissions and reconciliation with the rooms store. Requests
// that only read (roster, keys, wait) and DeviceFacts use the published view instead and never wait for it.
type meeting struct {
	room string

	mu        chanMutex
	ended     bool            // purged: callers must look the room up again
	authority *e2ee.Authority // nil until the first registration
	locked    bool            // the rooms store's lock, as last seen
	// members binds each room admission (participant id) to the credential registered through it; the
	// roster is exactly the credentials bound to live admissions.
	members map[string]*binding
	// pending holds keys registered before their holder's admission, by session.
	pending map[string]*pendingKey

	// view is what readers need, republished whenever the lock is released: requests for the roster, keys
	// and long-polls, and the policy's DeviceFacts, never wait for the lock (DeviceFacts may be asked while a
	// registration holds it, by the rooms API deciding whether the caller may register).
	view atomic.Pointer[meetingView]
	// holder says who holds mu and since when, for the log of a reconcile that waits too long for it.
	holder atomic.Pointer[lockHolder]
}

// lockHolder is what holds a meeting's lock: the operation and when it took the lock.
type lockHolder struct {
	op    string
	since time.Time
}

type meetingView struct {
	authority *e2ee.Authority
	bound     map[string]e2ee.Hash           // participant id -> credential
	sessions  map[string][]sessionCredential // session -> its registered credentials
}

type sessionCredential struct {
	cred    *e2ee.Credential
	kem     e2ee.KEM  // of the key package registered with it
	pending time.Time // for a key waiting for its holder's admission, until when it waits
}

// unlock publishes the meeting's view and releases its lock.
func (m *meeting) unlock() {
	v := &meetingView{bound: make(map[string]e2ee.Hash, len(m.members)), sessions: map[string][]sessionCredential{}}
	if !m.ended {
		v.authority = m.authority
		for pid, b := range m.members {
			v.bound[pid] = b.cred.Hash()
			v.sessions[b.session] = append(v.sessions[b.session], sessionCredential{cred: b.cred, kem: b.kem})
		}
		for sk, pk := range m.pending {
			v.sessions[sk] = append(v.sessions[sk], sessionCredential{cred: pk.cred, kem: pk.kem, pending: pk.expires})
		}
	}
	m.view.Store(v)
	m.holder.Store(nil)
	m.mu.Unlock()
}

// chanMutex is a mutex whose Lock can give up when a context ends, so that a request stuck behind a slow
// reconciliation does not outlive its caller.
type chanMutex chan struct{}

func newChanMutex() chanMutex { return make(chanMutex, 1) }

func (m chanMutex) Lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errUnavailable, ctx.Err())
	}
}

func (m chanMutex) Unlock() { <-m }

type binding struct {
	cred    *e2ee.Credential
	kem     e2ee.KEM
	session string
}

type pendingKey struct {
	cred    *e2ee.Credential
	kem     e2ee.KEM
	subject rooms.SubjectKey
	expires time.Time
}

// participant is the part of an admission the key exchange needs.
type participant struct {
	id, role, session string
}

// lockMeeting returns room's meeting locked for op (named in the log if the lock is held too long), creating
// the entry if create is set; nil if there is none.
func (h *Handler) lockMeeting(ctx context.Context, room, op string, create bool) (*meeting, error) {
	for {
		h.mu.Lock()
		m := h.meetings[room]
		if m == nil && create {
			m = &meeting{room: room, mu: newChanMutex(), members: map[string]*binding{}, pending: map[string]*pendingKey{}}
			h.meetings[room] = m
		}
		h.mu.Unlock()
		if m == nil {
			return nil, nil
		}
		if err := m.mu.Lock(ctx); err != nil {
			return nil, err
		}
		if !m.ended {
			m.holder.Store(&lockHolder{op: op, since: time.Now()})
			if err := h.loadShared(ctx, m); err != nil {
				m.unlock()
				return nil, err
			}
			return m, nil
		}
		m.mu.Unlock()
	}
}

// existing returns room's meeting, nil if there is none.
func (h *Handler) existing(room string) *meeting {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.meetings[room]
}

// instanceKey is where the current meeting instance id of a room is kept, so that every gateway sharing the
// Store agrees on it.
func instanceKey(room string) string { return "e2ee-instance/" + room + "/" }

// ensureAuthority starts the meeting's Authority if it has none; m is locked.
func (h *Handler) ensureAuthority(ctx context.Context, m *meeting) error {
	if m.authority != nil {
		return nil
	}
	instance, err := h.instance(ctx, m.room)
	if err != nil {
		return err
	}
	classic := false
	if h.opts.AllowClassicKEM != nil {
		if classic, err = h.opts.AllowClassicKEM(ctx, m.room); err != nil {
			return fmt.Errorf("%w: classic KEM policy: %w", errUnavailable, err)
		}
	}
	rm, err := h.opts.Rooms.Room(ctx, m.room)
	switch {
	case err == nil:
		m.locked = rm.Locked
	case !errors.Is(err, rooms.ErrNotFound):
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	a, err := e2ee.NewAuthority(ctx, e2ee.AuthorityOptions{
		Room: m.room, Instance: instance, SigningKey: h.opts.SigningKey, Store: h.opts.Store,
		AllowClassicKEM: classic, NonceTTL: h.opts.NonceTTL, CredentialTTL: h.opts.CredentialTTL,
		MaxMembers: h.opts.MaxMembers, Clock: h.opts.Clock, Logger: h.log.Named("authority"), OnEvent: h.onEvent,
	})
	if err != nil {
		return err
	}
	m.authority = a
	h.log.Info("e2ee meeting started", zap.String("room", m.room), zap.String("instance", instance), zap.Bool("classic_kem", classic))
	// Another node may have bound members of this instance already.
	return h.loadShared(ctx, m)
}

// joinExisting starts serving the room's current meeting instance, which another node may have started; it is
// ErrNoRoster when there is none. m is locked.
func (h *Handler) joinExisting(ctx context.Context, m *meeting) error {
	if m.authority != nil {
		return nil
	}
	if _, err := h.opts.Store.Get(ctx, instanceKey(m.room)); errors.Is(err, e2eestore.ErrNotFound) {
		return e2ee.ErrNoRoster
	} else if err != nil {
		return storeErr("meeting instance", err)
	}
	return h.ensureAuthority(ctx, m)
}

// instance returns the room's current meeting instance id, creating one if there is none.
func (h *Handler) instance(ctx context.Context, room string) (string, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	fresh := h.opts.Clock.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:])
	err := h.opts.Store.Create(ctx, instanceKey(room), []byte(fresh), 0)
	if err == nil {
		return fresh, nil
	}
	if !errors.Is(err, e2eestore.ErrExists) {
		return "", fmt.Errorf("%w: meeting instance: %w", errUnavailable, err)
	}
	b, err := h.opts.Store.Get(ctx, instanceKey(room))
	if err != nil {
		return "", fmt.Errorf("%w: meeting instance: %w", errUnavailable, err)
	}
	return string(b), nil
}

// authority returns room's Authority, starting the meeting if needed.
func (h *Handler) authority(ctx context.Context, room string) (*e2ee.Authority, error) {
	m, err := h.lockMeeting(ctx, room, "authority", true)
	if err != nil {
		return nil, err
	}
	defer m.unlock()
	if err := h.ensureAuthority(ctx, m); err != nil {
		return nil, err
	}
	return m.authority, nil
}

// register runs a registration of a caller that mayRegister let through. Whether the caller is a member, and
// the role a non-member is forecast, are asked before the meeting is locked (the rooms API may evaluate the
// policy, which reads DeviceFacts); a member's admission is checked again with the meeting locked, so that a
// kick the rooms store publishes meanwhile is reconciled after the credential is bound, never before.
func (h *Handler) register(ctx context.Context, w http.ResponseWriter, r *http.Request, room string, id identity.Identity, reg *e2ee.Registration) (*e2ee.Credential, error) {
	p, err := h.member(w, r, room)
	isMember := err == nil
	role := string(rooms.RoleParticipant)
	switch {
	case isMember:
		role = p.role
	case errors.Is(err, errUnavailable):
		return nil, err
	default:
		if f, ok := h.opts.Membership.(RoleForecaster); ok {
			if role, err = f.ForecastRole(r, room); err != nil {
				if errors.Is(err, rooms.ErrStoreUnavailable) {
					return nil, fmt.Errorf("%w: %w", errUnavailable, err)
				}
				return nil, fmt.Errorf("%w: %w", errNotAdmitted, err)
			}
		}
	}
	m, err := h.lockMeeting(ctx, room, "register", true)
	if err != nil {
		return nil, err
	}
	defer m.unlock()
	if isMember {
		if again, err := h.member(nil, r, room); err != nil || again.id != p.id {
			return nil, fmt.Errorf("%w: admission ended during registration", errNotAdmitted)
		}
	}
	e2eeRole, err := e2ee.ParseRole(role)
	if err != nil {
		return nil, fmt.Errorf("e2eeapi: membership role: %w", err)
	}
	if err := h.ensureAuthority(ctx, m); err != nil {
		return nil, err
	}
	cred, err := m.authority.Register(ctx, e2ee.RegisterRequest{
		Identity: e2eeIdentity(id), DisplayName: displayName(id), Role: e2eeRole, Registration: reg,
	})
	if err != nil {
		return nil, err
	}
	kp, err := e2ee.ParseKeyPackage(reg.KeyPackage) // Register has checked it
	if err != nil {
		return nil, err
	}
	// Nothing is handed out unrecorded: without a durable record the credential is never returned nor admitted.
	if err := h.opts.Audit.Record(context.WithoutCancel(ctx), eventKeyRegistered,
		zap.String(audit.FieldRoom, room), zap.String(audit.FieldInstance, cred.Instance),
		zap.String(audit.FieldSubject, id.Subject), zap.String(audit.FieldIssuer, id.Issuer),
		zap.String(audit.FieldDevice, fingerprint(cred)), zap.String(audit.FieldKeyID, cred.Hash().String()),
		zap.String(audit.FieldKEM, kp.KEM.String()), zap.String(audit.FieldRole, cred.Role.String()), zap.Bool(audit.FieldAdmitted, isMember),
	); err != nil {
		return nil, fmt.Errorf("%w: audit: %w", errUnavailable, err)
	}
	if !isMember {
		if err := h.savePending(ctx, m, sessionKey(id), &pendingKey{cred: cred, kem: kp.KEM, subject: rooms.SubjectKey(id.Key()),
			expires: h.opts.Clock.Now().Add(h.opts.PendingTTL)}); err != nil {
			return nil, err
		}
		return cred, nil
	}
	if b := m.members[p.id]; b != nil && cred.Renews(b.cred) && m.authority.Head().Has(b.cred.Hash()) {
		return cred, h.renew(withCause(ctx, "renewed"), m, p, b, &binding{cred: cred, kem: kp.KEM, session: p.session})
	}
	ctx = withCause(ctx, "registered")
	if err := h.supersede(ctx, m, p.id, cred); err != nil {
		return nil, err
	}
	// Bound before it is admitted: a node reconciling meanwhile reads the roster before the bindings, so it
	// never takes out a credential it has not seen bound.
	if err := h.saveMember(ctx, m, p.id, &binding{cred: cred, kem: kp.KEM, session: p.session}); err != nil {
		return nil, err
	}
	// A key this session registered before its admission is superseded.
	if err := h.dropPending(ctx, m, p.session); err != nil {
		return nil, err
	}
	if err := h.admit(ctx, m, cred.Hash()); err != nil {
		_ = h.dropMember(ctx, m, p.id)
		return nil, err
	}
	return cred, nil
}

// renew replaces the credential bound to p's admission by its renewal in one epoch (docs/e2ee.md section 7.4):
// the device stays in the roster, even in a locked room; m is locked.
func (h *Handler) renew(ctx context.Context, m *meeting, p participant, old, next *binding) error {
	if err := h.saveMember(ctx, m, p.id, next); err != nil {
		return err
	}
	if _, err := m.authority.Renew(ctx, old.cred.Hash(), next.cred.Hash()); err != nil {
		if rerr := h.saveMember(ctx, m, p.id, old); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	return nil
}

// caller returns the room's Authority and the credential bound to the caller's admission, after checking
// that the caller is a member. The binding is read from the Store, so a member registered through another
// gateway node is served here too. A key registered before the admission is taken into the roster here if
// nobody called OnAdmitted.
func (h *Handler) caller(ctx context.Context, w http.ResponseWriter, r *http.Request, room string) (*e2ee.Authority, e2ee.Hash, error) {
	p, err := h.member(w, r, room)
	if err != nil {
		return nil, e2ee.Hash{}, err
	}
	if m := h.existing(room); m != nil {
		if v := m.view.Load(); v != nil && v.authority != nil {
			cred, ok, err := h.boundCredential(ctx, room, v.authority.Instance(), p.id)
			if err != nil {
				return nil, e2ee.Hash{}, err
			}
			if ok {
				return v.authority, cred, nil
			}
		}
	}
	m, err := h.lockMeeting(ctx, room, "member_request", true)
	if err != nil {
		return nil, e2ee.Hash{}, err
	}
	defer m.unlock()
	if err := h.joinExisting(ctx, m); err != nil {
		return nil, e2ee.Hash{}, err
	}
	b := m.members[p.id]
	if b == nil {
		if err := h.promote(withCause(ctx, "admitted"), m, p); err != nil {
			return nil, e2ee.Hash{}, err
		}
		if b = m.members[p.id]; b == nil {
			return nil, e2ee.Hash{}, errNotRegistered
		}
	}
	return m.authority, b.cred.Hash(), nil
}

// OnAdmitted takes a key that p registered before its admission into the roster at once (the rooms API calls
// it right after admitting p). Without the call the key is taken in on p's first e2ee request. A key registered
// for another role than p was admitted with is dropped and ErrRoleChanged returned: p must register again.
func (h *Handler) OnAdmitted(ctx context.Context, room string, p admission.Participant) error {
	m, err := h.lockMeeting(ctx, room, "admitted", true)
	if err != nil {
		return err
	}
	defer m.unlock()
	if err := h.joinExisting(ctx, m); errors.Is(err, e2ee.ErrNoRoster) {
		return nil
	} else if err != nil {
		return err
	}
	if m.members[p.ParticipantID] != nil || p.ParticipantID == "" {
		return nil
	}
	return h.promote(withCause(ctx, "admitted"), m, participant{id: p.ParticipantID, role: p.Role, session: sessionKey(p.Identity)})
}

// supersede takes out of the roster, in one epoch before cred is admitted, the key previously bound to the
// admission pid (a restarted client) and every other credential of cred's device key (the same device rejoining
// through a new admission while its old one lingers). Clients alarm on two roster entries with one device key
// (ErrClone), so an honest gateway must never publish them; m is locked.
func (h *Handler) supersede(ctx context.Context, m *meeting, pid string, cred *e2ee.Credential) error {
	var gone []e2ee.Hash
	for id, b := range m.members {
		if id == pid || b.cred.SigningKey.Equal(cred.SigningKey) {
			if err := h.dropMember(ctx, m, id); err != nil {
				return err
			}
			gone = append(gone, b.cred.Hash())
		}
	}
	head := m.authority.Head()
	gone = slices.DeleteFunc(gone, func(c e2ee.Hash) bool { return head == nil || !head.Has(c) })
	if len(gone) == 0 {
		return nil
	}
	_, err := m.authority.Remove(ctx, gone...)
	return err
}

// promote binds the key p's session registered before admission to p; m is locked.
func (h *Handler) promote(ctx context.Context, m *meeting, p participant) error {
	pk := m.pending[p.session]
	if pk == nil {
		return nil
	}
	// p's admission was checked before m was locked; a kick since then may have been reconciled already, and
	// nothing would take a key bound to the ended admission out of the roster before the next sweep. So the
	// admission must still be listed now, with m locked: a removal published later is reconciled after this.
	if err := h.stillAdmitted(ctx, m.room, p.id); err != nil {
		return err
	}
	if err := h.dropPending(ctx, m, p.session); err != nil {
		return err
	}
	if !h.opts.Clock.Now().Before(pk.expires) {
		return nil
	}
	if role, err := e2ee.ParseRole(p.role); err != nil || role != pk.cred.Role {
		h.auditRejected(ctx, m.room, pk.cred.Instance, pk.cred.Identity.Subject, pk.cred.Hash(), "admit", "role_changed")
		return fmt.Errorf("%w: registered as %v, admitted as %q", ErrRoleChanged, pk.cred.Role, p.role)
	}
	if err := h.supersede(ctx, m, p.id, pk.cred); err != nil {
		return err
	}
	if err := h.saveMember(ctx, m, p.id, &binding{cred: pk.cred, kem: pk.kem, session: p.session}); err != nil {
		return err
	}
	if err := h.admit(ctx, m, pk.cred.Hash()); err != nil {
		_ = h.dropMember(ctx, m, p.id)
		return err
	}
	return nil
}

// stillAdmitted checks in the rooms store that admission pid of room has not ended.
func (h *Handler) stillAdmitted(ctx context.Context, room, pid string) error {
	rm, err := h.opts.Rooms.Room(ctx, room)
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		return fmt.Errorf("%w: the room ended", errNotAdmitted)
	case err != nil:
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	for _, q := range rm.Participants {
		if string(q.ID) == pid {
			return nil
		}
	}
	return fmt.Errorf("%w: the admission ended", errNotAdmitted)
}

// admit adds credentials to the roster; m is locked. The rooms store lets hosts into a locked room, and a
// host lets people in from the lobby; the roster then publishes an unlock, the admission and the lock again,
// so every member sees how a locked roster grew.
func (h *Handler) admit(ctx context.Context, m *meeting, creds ...e2ee.Hash) error {
	a := m.authority
	if head := a.Head(); head != nil && head.Locked {
		if _, err := a.SetLocked(ctx, false); err != nil {
			return err
		}
	}
	_, err := a.Admit(ctx, creds...)
	if head := a.Head(); m.locked && head != nil && !head.Locked {
		if _, lerr := a.SetLocked(ctx, true); lerr != nil {
			err = errors.Join(err, lerr)
		}
	}
	return err
}

// EndMeeting purges the room's key exchange: every credential, roster and sealed key of the meeting instance.
// The next registration starts a new instance. Call it when the meeting ends; the Handler also does when the
// rooms store says the room ended or has no participant left.
func (h *Handler) EndMeeting(ctx context.Context, room string) error {
	m, err := h.lockMeeting(ctx, room, "end", false)
	if err != nil || m == nil {
		return err
	}
	defer m.unlock()
	return h.end(ctx, m, "meeting_ended")
}

// end purges m; m is locked.
func (h *Handler) end(ctx context.Context, m *meeting, reason string) error {
	var errs []error
	if a := m.authority; a != nil {
		var epoch uint64
		if head := a.Head(); head != nil {
			epoch = head.Epoch
		}
		if err := a.Purge(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := h.opts.Store.DeletePrefix(ctx, sharedPrefix(m.room, a.Instance())); err != nil {
			errs = append(errs, err)
		}
		h.auditEpoch(ctx, m.room, a.Instance(), epoch, 0, reason)
		h.log.Info("e2ee meeting ended", zap.String("room", m.room), zap.String("instance", a.Instance()), zap.String("reason", reason))
	}
	if _, err := h.opts.Store.Take(ctx, instanceKey(m.room)); err != nil && !errors.Is(err, e2eestore.ErrNotFound) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("e2eeapi: end meeting %s: %w", m.room, errors.Join(errs...))
	}
	m.ended = true
	h.mu.Lock()
	if h.meetings[m.room] == m {
		delete(h.meetings, m.room)
	}
	h.mu.Unlock()
	return nil
}

// DeviceFacts is the policy input's device object for id in room: whether the session has a registered,
// unexpired device key here, its fingerprint (SHA256: and the unpadded base64 of the SHA-256 of the Ed25519
// device key, stable across sessions of one device) and whether its KEM has a post-quantum part.
func (h *Handler) DeviceFacts(ctx context.Context, room string, id identity.Identity) (policy.Device, error) {
	var mine []sessionCredential
	if m := h.existing(room); m != nil {
		if v := m.view.Load(); v != nil {
			mine = v.sessions[sessionKey(id)]
		}
	}
	if len(mine) == 0 {
		// Registered through another gateway node, perhaps.
		var err error
		if mine, err = h.sharedDevices(ctx, room, sessionKey(id)); err != nil {
			return policy.Device{}, err
		}
	}
	now := h.opts.Clock.Now()
	var best *sessionCredential
	for _, sc := range mine {
		if (sc.pending.IsZero() || now.Before(sc.pending)) && now.Before(sc.cred.NotAfter) &&
			(best == nil || sc.cred.NotAfter.After(best.cred.NotAfter)) {
			best = &sc
		}
	}
	if best == nil {
		return policy.Device{}, nil
	}
	return policy.Device{KeyRegistered: true, KeyFingerprint: fingerprint(best.cred), PQ: best.kem == e2ee.KEMXWing}, nil
}

func fingerprint(c *e2ee.Credential) string {
	d := sha256.Sum256(c.SigningKey)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(d[:])
}

// follow keeps every meeting in step with the rooms store until ctx ends: on each room event, after every
// (re)subscription (events may have been lost), and every SweepInterval.
func (h *Handler) follow(ctx context.Context) {
	events := make(chan rooms.Event)
	go func() {
		backoff := time.Second
		for ctx.Err() == nil {
			ch, err := h.opts.Rooms.Subscribe(ctx)
			if err != nil {
				h.log.Warn("e2ee: subscribe to room events", zap.Error(err), zap.Duration("retry_in", backoff))
				if sleep(ctx, backoff) != nil {
					return
				}
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			backoff = time.Second
			select {
			case events <- rooms.Event{Kind: resyncEvent}:
			case <-ctx.Done():
				return
			}
			for e := range ch {
				select {
				case events <- e:
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() == nil {
				h.log.Warn("e2ee: room events interrupted; reconciling every meeting")
			}
		}
	}()
	go h.watchFollower(ctx)
	tick := time.NewTicker(h.opts.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			h.reconcileAll(ctx, "sweep")
		case e := <-events:
			// A burst (a suspension, a wave of lapsed leases) is reconciled once per room.
			dirty := map[string]string{}
			for more := true; more; {
				switch e.Kind {
				case resyncEvent:
					h.reconcileAll(ctx, "resync")
				case rooms.EventRemoved, rooms.EventBanned, rooms.EventLeft, rooms.EventExpired, rooms.EventSuspended,
					rooms.EventLocked, rooms.EventUnlocked:
					if _, seen := dirty[e.Room]; !seen {
						dirty[e.Room] = string(e.Kind)
					}
				}
				select {
				case e = <-events:
				default:
					more = false
				}
			}
			for room, cause := range dirty {
				h.reconcile(ctx, room, cause)
			}
		}
	}
}

const resyncEvent rooms.EventKind = "e2eeapi.resync"

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reconcileRun is the reconcile the follower is running: what a follower that stopped following would be
// stuck in.
type reconcileRun struct {
	room, cause string
	since       time.Time
}

// defaultStuckAfter is how long a reconcile may run before the log says the follower is stuck: far beyond what
// reading the rooms store and signing an epoch take, short enough to show within a kick's two-minute test.
const defaultStuckAfter = 30 * time.Second

// watchFollower logs, every half of stuckAfter until ctx ends, a reconcile that has been running for longer than
// stuckAfter, with what holds the meeting's lock: while it lasts, no kick, ban or leave in any room reaches a
// roster, and nothing else would say so.
func (h *Handler) watchFollower(ctx context.Context) {
	after := cmp.Or(h.opts.stuckAfter, defaultStuckAfter)
	tick := time.NewTicker(after / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r := h.reconciling.Load()
		if r == nil {
			continue
		}
		running := time.Since(r.since)
		if running < after {
			continue
		}
		const stuck = "e2ee: reconcile stuck; room events are not reaching any roster"
		var ho *lockHolder
		if m := h.existing(r.room); m != nil {
			ho = m.holder.Load()
		}
		if ho == nil {
			h.log.Error(stuck, zap.String("room", r.room), zap.String("cause", r.cause), zap.Duration("running", running))
			continue
		}
		h.log.Error(stuck, zap.String("room", r.room), zap.String("cause", r.cause), zap.Duration("running", running),
			zap.String("lock_held_by", ho.op), zap.Duration("lock_held_for", time.Since(ho.since)))
	}
}

func (h *Handler) reconcileAll(ctx context.Context, cause string) {
	h.mu.Lock()
	names := make([]string, 0, len(h.meetings))
	for room := range h.meetings {
		names = append(names, room)
	}
	h.mu.Unlock()
	for _, room := range names {
		h.reconcile(ctx, room, cause)
	}
}

// reconcile makes room's roster match the rooms store: credentials of admissions that ended (kick, ban,
// leave, lapsed lease, suspension) leave in one epoch, the lock follows the room's, and a room that ended or
// has nobody left ends its meeting. It reads the rooms store with the meeting locked, so no admission bound
// meanwhile is missed.
func (h *Handler) reconcile(ctx context.Context, room, cause string) {
	h.reconciling.Store(&reconcileRun{room: room, cause: cause, since: time.Now()})
	defer h.reconciling.Store(nil)
	log := h.log.With(zap.String("room", room), zap.String("cause", cause))
	m, err := h.lockMeeting(ctx, room, "reconcile", false)
	if err != nil {
		// Left to the next event or sweep; said, so that a kick that never rotates shows why.
		log.Warn("e2ee: reconcile: load meeting", zap.Error(err))
		return
	}
	if m == nil {
		return
	}
	defer m.unlock()
	rm, err := h.opts.Rooms.Room(ctx, room)
	if errors.Is(err, rooms.ErrNotFound) {
		if err := h.end(ctx, m, "room_ended"); err != nil {
			log.Error("e2ee: end meeting", zap.Error(err))
		}
		return
	}
	if err != nil {
		log.Warn("e2ee: reconcile: read room", zap.Error(err))
		return
	}
	// The roster is read before the bindings: a node binds a credential before admitting it, so every member
	// of the head read here is bound in what is read next, whichever node registered it.
	var head *e2ee.Roster
	if a := m.authority; a != nil {
		if head, err = a.CurrentHead(ctx); err != nil {
			log.Warn("e2ee: reconcile: read roster", zap.Error(err))
			return
		}
		if err := h.loadShared(ctx, m); err != nil {
			log.Warn("e2ee: reconcile: read bindings", zap.Error(err))
			return
		}
	}
	live := make(map[string]bool, len(rm.Participants))
	for _, p := range rm.Participants {
		live[string(p.ID)] = true
	}
	bound := map[e2ee.Hash]bool{}
	for pid, b := range m.members {
		if !live[pid] {
			if err := h.dropMember(ctx, m, pid); err != nil {
				log.Warn("e2ee: reconcile: unbind", zap.Error(err))
			}
			continue
		}
		bound[b.cred.Hash()] = true
	}
	banned := map[rooms.SubjectKey]bool{}
	for _, b := range rm.Bans {
		banned[b.Subject] = true
	}
	now := h.opts.Clock.Now()
	for sk, pk := range m.pending {
		if banned[pk.subject] || !now.Before(pk.expires) {
			if err := h.dropPending(ctx, m, sk); err != nil {
				log.Warn("e2ee: reconcile: drop pending key", zap.Error(err))
			}
		}
	}
	m.locked = rm.Locked
	if len(rm.Participants) == 0 && len(m.pending) == 0 {
		if err := h.end(ctx, m, "meeting_ended"); err != nil {
			log.Error("e2ee: end meeting", zap.Error(err))
		}
		return
	}
	a := m.authority
	if a == nil {
		return
	}
	ctx = withCause(ctx, cause)
	if head != nil {
		// Every node reconciles the same room event; a node whose removal another node made first finds the
		// credential gone (ErrNotMember) and removes what is left.
		removed := 0
		for attempt := 0; attempt < 3; attempt++ {
			gone := slices.DeleteFunc(slices.Clone(a.Head().Members), func(c e2ee.Hash) bool { return bound[c] })
			if len(gone) == 0 {
				break
			}
			_, err := a.Remove(ctx, gone...)
			if err == nil {
				removed = len(gone)
				break
			}
			if !errors.Is(err, e2ee.ErrNotMember) || attempt == 2 {
				log.Error("e2ee: remove ended admissions from the roster", zap.Int("credentials", len(gone)), zap.Error(err))
				break
			}
		}
		// A credential its holder did not renew leaves the roster once it expires: clients refuse to seal to it.
		if _, err := a.DropExpired(ctx); err != nil {
			log.Error("e2ee: drop expired credentials", zap.Error(err))
		}
		if head := a.Head(); head.Locked != rm.Locked {
			if _, err := a.SetLocked(ctx, rm.Locked); err != nil {
				log.Error("e2ee: follow the room lock", zap.Bool("locked", rm.Locked), zap.Error(err))
			}
		}
		// Said for every event that ends admissions, removed or not: a kick whose credential stays (bound to an
		// admission the rooms store still lists) shows here.
		if removed > 0 || endsAdmissions(cause) {
			head := a.Head()
			log.Info("e2ee: reconciled", zap.Int("participants", len(rm.Participants)), zap.Int("bound", len(bound)),
				zap.Int("removed", removed), zap.Uint64("epoch", head.Epoch), zap.Int("roster_members", len(head.Members)))
		}
	}
}

// endsAdmissions reports whether a reconcile's cause is a rooms event that ends admissions.
func endsAdmissions(cause string) bool {
	switch rooms.EventKind(cause) {
	case rooms.EventRemoved, rooms.EventBanned, rooms.EventLeft, rooms.EventExpired, rooms.EventSuspended:
		return true
	}
	return false
}

// RoomStatus is what a room's hosts may see of its end-to-end meeting:
// the roster the gateway signed. Never keys, and never the security code:
// only clients can derive it (a host's own meeting page shows it).
type RoomStatus struct {
	// Active: the room has a meeting with end-to-end keys.
	Active  bool   `json:"active"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Members int    `json:"members"`
	Locked  bool   `json:"locked,omitempty"`
}

// RoomStatus reports room's end-to-end meeting, on any node sharing the
// store; a room nobody registered a key for is not Active (and starts no
// meeting).
func (h *Handler) RoomStatus(ctx context.Context, room string) (RoomStatus, error) {
	if _, err := h.opts.Store.Get(ctx, instanceKey(room)); errors.Is(err, e2eestore.ErrNotFound) {
		return RoomStatus{}, nil
	} else if err != nil {
		return RoomStatus{}, fmt.Errorf("%w: meeting instance: %w", errUnavailable, err)
	}
	a, err := h.authority(ctx, room)
	if err != nil {
		return RoomStatus{}, err
	}
	head, err := a.CurrentHead(ctx)
	if err != nil {
		return RoomStatus{}, fmt.Errorf("%w: roster: %w", errUnavailable, err)
	}
	if head == nil {
		return RoomStatus{Active: true}, nil
	}
	return RoomStatus{Active: true, Epoch: head.Epoch, Members: len(head.Members), Locked: head.Locked}, nil
}
