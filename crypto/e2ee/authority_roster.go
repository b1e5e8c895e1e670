package e2ee

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"go.uber.org/zap"
)

// rosterChange is the next epoch's membership being built by advance.
type rosterChange struct {
	members map[Hash]*Credential
	locked  bool
	at      time.Time
}

// Admit adds registered credentials to the roster as one new epoch. Credentials already in the roster are
// ignored; if nothing changes no epoch is created and the head is returned.
func (a *Authority) Admit(ctx context.Context, creds ...Hash) (*Roster, error) {
	return a.advance(ctx, "admit", false, func(c *rosterChange) error {
		for _, h := range creds {
			if _, ok := c.members[h]; ok {
				continue
			}
			if c.locked {
				return ErrLocked
			}
			cred, err := a.credential(ctx, h)
			if err != nil {
				return err
			}
			if !cred.NotAfter.After(c.at) {
				return fmt.Errorf("%w: %s", ErrCredentialExpired, h.Short())
			}
			c.members[h] = cred
		}
		return nil
	})
}

// Remove takes credentials out of the roster as one new epoch (leave, kick, ban). Their holders cannot open
// anything sealed for it.
func (a *Authority) Remove(ctx context.Context, creds ...Hash) (*Roster, error) {
	return a.advance(ctx, "remove", false, func(c *rosterChange) error {
		for _, h := range creds {
			if _, ok := c.members[h]; !ok {
				return fmt.Errorf("%w: %s", ErrNotMember, h.Short())
			}
			delete(c.members, h)
		}
		return nil
	})
}

// SetLocked locks or unlocks the room in a new epoch. Clients refuse an epoch that adds a member to a locked
// roster, so a locked room can only grow after an unlock every member sees.
func (a *Authority) SetLocked(ctx context.Context, locked bool) (*Roster, error) {
	op := "unlock"
	if locked {
		op = "lock"
	}
	return a.advance(ctx, op, false, func(c *rosterChange) error {
		c.locked = locked
		return nil
	})
}

// Rekey starts a new epoch with the same members, making every sender draw a new key (an operator's "rotate
// now"; senders also re-key on their own timer).
func (a *Authority) Rekey(ctx context.Context) (*Roster, error) {
	return a.advance(ctx, "rekey", true, func(*rosterChange) error { return nil })
}

// advance applies change to the head's membership, drops expired credentials, and signs and stores the next
// epoch, unless nothing changed and force is false.
func (a *Authority) advance(ctx context.Context, op string, force bool, change func(*rosterChange) error) (*Roster, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Another Authority sharing the store may sign an epoch first; the loser reloads that head and applies the
	// change on top of it, so a kick handled on either node lands.
	for attempt := 0; ; attempt++ {
		if err := a.reload(ctx); err != nil {
			return nil, err
		}
		r, err := a.advanceOnce(ctx, op, force, change)
		if errors.Is(err, ErrConflict) && attempt < 8 {
			a.log.Info("e2ee.epoch_race", zap.String("op", op), zap.Int("attempt", attempt+1))
			continue
		}
		return r, err
	}
}

// advanceOnce is one attempt of advance; the caller holds a.mu.
func (a *Authority) advanceOnce(ctx context.Context, op string, force bool, change func(*rosterChange) error) (*Roster, error) {
	c := &rosterChange{members: make(map[Hash]*Credential, len(a.members)+1), at: a.clock.Now().Truncate(time.Millisecond)}
	var epoch uint64 = 1
	var prev Hash
	if a.head != nil {
		c.locked = a.head.Locked
		epoch, prev = a.head.Epoch+1, a.head.Hash()
		if a.head.IssuedAt.After(c.at) {
			c.at = a.head.IssuedAt
		}
	}
	for h, cred := range a.members {
		c.members[h] = cred
	}
	if err := change(c); err != nil {
		return nil, err
	}
	for h, cred := range c.members {
		if !cred.NotAfter.After(c.at) {
			delete(c.members, h)
		}
	}
	unchanged := a.head != nil && c.locked == a.head.Locked && len(c.members) == len(a.members)
	for h := range c.members {
		if _, ok := a.members[h]; !ok {
			unchanged = false
		}
	}
	if unchanged && !force {
		return a.head, nil
	}
	if len(c.members) > a.maxMembers {
		return nil, fmt.Errorf("%w: %d members, limit %d", ErrRoomFull, len(c.members), a.maxMembers)
	}
	members := make([]Hash, 0, len(c.members))
	for h := range c.members {
		members = append(members, h)
	}
	slices.SortFunc(members, compareHash)
	next, err := issueRoster(a.key, &Roster{
		Room: a.room, Instance: a.instance, Epoch: epoch, IssuedAt: c.at, Prev: prev, Locked: c.locked, Members: members,
	})
	if err != nil {
		return nil, err
	}
	// Create, not Put: a second signer of the same epoch (another process sharing the store) loses here
	// instead of forking the chain.
	if err := a.store.Create(ctx, a.k(fmt.Sprintf("roster/%020d", epoch)), next.raw, 0); err != nil {
		if errors.Is(err, e2eestore.ErrExists) {
			return nil, fmt.Errorf("%w: epoch %d already signed", ErrConflict, epoch)
		}
		return nil, fmt.Errorf("e2ee: store roster: %w", err)
	}
	if err := a.store.Put(ctx, a.k("head"), next.raw, 0); err != nil {
		return nil, fmt.Errorf("e2ee: store head: %w", err)
	}
	if a.head != nil {
		// Sealed keys of the replaced epoch are never served again.
		for _, kind := range []string{"sealed", "commit"} {
			if err := a.store.DeletePrefix(ctx, a.k(epochKey(kind, a.head.Epoch))); err != nil {
				a.log.Warn("e2ee.cleanup", zap.Uint64("epoch", a.head.Epoch), zap.Error(err))
			}
		}
	}
	a.head, a.members = next, c.members
	a.bump(ctx)
	a.log.Info(string(EventEpoch), zap.String("op", op), zap.Uint64("epoch", epoch),
		zap.Int("members", len(members)), zap.Bool("locked", c.locked), zap.String("roster", next.Hash().Short()))
	a.emit(ctx, Event{Kind: EventEpoch, Op: op, Epoch: epoch, Members: len(members)})
	return next, nil
}

// Roster returns the roster update for a member that holds epoch since (0 for a joining client): the head alone
// for since = 0, otherwise epochs since+1 through the head, with the credentials of every member the client
// does not know yet. The requester must be a member of the head or of epoch since, so a removed member still
// learns of its removal and nobody else learns the roster.
func (a *Authority) Roster(ctx context.Context, requester Hash, since uint64) (_ []byte, err error) {
	defer func() {
		if err != nil && (errors.Is(err, ErrNotMember) || errors.Is(err, ErrUnknownEpoch)) {
			a.reject(ctx, "roster", Identity{}, requester, since, err)
		}
	}()
	// The version is read before the head: a change after this read counts above it, so the client's next
	// long-poll wakes for it instead of missing it.
	version, err := a.store.Counter(ctx, a.k(versionKey))
	if err != nil {
		return nil, fmt.Errorf("e2ee: version: %w", err)
	}
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	head, members := a.head, a.members
	a.mu.Unlock()

	if head == nil {
		return nil, ErrNoRoster
	}
	if since > head.Epoch {
		return nil, fmt.Errorf("%w: %d is beyond the head %d", ErrUnknownEpoch, since, head.Epoch)
	}
	var base *Roster
	if since > 0 {
		if base, err = a.roster(ctx, since); err != nil {
			return nil, err
		}
	}
	if !head.Has(requester) && (base == nil || !base.Has(requester)) {
		return nil, ErrNotMember
	}
	update := &rosterUpdate{version: version}
	rosters := []*Roster{head}
	if since > 0 {
		rosters = rosters[:0]
		for n := since + 1; n <= head.Epoch; n++ {
			r := head
			if n < head.Epoch {
				if r, err = a.roster(ctx, n); err != nil {
					return nil, err
				}
			}
			rosters = append(rosters, r)
		}
	}
	// A credential is sent for every member that was not in the epoch before the one listing it: a client
	// knows only the credentials of its head, so one that left and came back (the same device re-registering
	// within a second gets the same credential) must be sent again.
	seen := map[Hash]bool{}
	prev := base
	for _, r := range rosters {
		update.rosters = append(update.rosters, r.raw)
		before := prev
		prev = r
		for _, h := range r.Members {
			if seen[h] || (before != nil && before.Has(h)) {
				continue
			}
			seen[h] = true
			cred, ok := members[h]
			if !ok {
				if cred, err = a.credential(ctx, h); err != nil {
					return nil, err
				}
			}
			update.credentials = append(update.credentials, cred.raw)
		}
	}
	return update.marshal()
}

func (a *Authority) roster(ctx context.Context, epoch uint64) (*Roster, error) {
	raw, err := a.store.Get(ctx, a.k(fmt.Sprintf("roster/%020d", epoch)))
	if errors.Is(err, e2eestore.ErrNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEpoch, epoch)
	}
	if err != nil {
		return nil, err
	}
	return ParseRoster(raw)
}

// refresh picks up epochs another gateway node sharing the store has signed, so every node serves the same
// head. It costs one store read when nothing changed.
func (a *Authority) refresh(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reload(ctx); err != nil {
		return fmt.Errorf("e2ee: reload head: %w", err)
	}
	return nil
}

// headFor returns the head if epoch is it and member belongs to it.
func (a *Authority) headFor(ctx context.Context, epoch uint64, member Hash) (*Roster, map[Hash]*Credential, error) {
	if err := a.refresh(ctx); err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	head, members := a.head, a.members
	a.mu.Unlock()
	switch {
	case head == nil:
		return nil, nil, ErrNoRoster
	case epoch < head.Epoch:
		return nil, nil, fmt.Errorf("%w: %d, head is %d", ErrStaleEpoch, epoch, head.Epoch)
	case epoch > head.Epoch:
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownEpoch, epoch)
	case !head.Has(member):
		return nil, nil, ErrNotMember
	}
	return head, members, nil
}
