package e2ee

import (
	"context"

	"go.uber.org/zap"
)

// EventKind names what happened.
type EventKind string

// Event kinds.
const (
	EventRegistered EventKind = "e2ee.register"
	EventEpoch      EventKind = "e2ee.epoch"
	EventCommit     EventKind = "e2ee.commit"
	EventRejected   EventKind = "e2ee.reject"
)

// Event is an auditable fact. It never carries key material.
type Event struct {
	Kind       EventKind
	Room       string
	Instance   string
	Op         string   // register, admit, remove, lock, unlock, rekey, post_commit, post_key_package, roster, sealed_for, key_packages
	Identity   Identity // for registrations
	Credential Hash     // the credential concerned, if any
	Epoch      uint64
	Members    int   // roster size, for epochs
	Err        error // why a message was rejected
}

func (a *Authority) emit(ctx context.Context, e Event) {
	e.Room, e.Instance = a.room, a.instance
	if a.onEvent != nil {
		a.onEvent(ctx, e)
	}
}

func (a *Authority) reject(ctx context.Context, op string, id Identity, cred Hash, epoch uint64, err error) {
	a.log.Warn(string(EventRejected), zap.String("op", op), zap.String("subject", id.Subject),
		zap.String("credential", cred.Short()), zap.Uint64("epoch", epoch), zap.Error(err))
	a.emit(ctx, Event{Kind: EventRejected, Op: op, Identity: id, Credential: cred, Epoch: epoch, Err: err})
}
