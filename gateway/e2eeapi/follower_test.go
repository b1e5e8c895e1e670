package e2eeapi

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
)

type nobodyIsMember struct{}

func (nobodyIsMember) Member(*http.Request, string) (admission.Participant, error) {
	return admission.Participant{}, errors.New("nobody")
}
func (nobodyIsMember) CanRegisterKey(*http.Request, string) error { return errors.New("nobody") }

type discardAudit struct{}

func (discardAudit) Record(context.Context, string, ...zap.Field) error { return nil }

// TestFollower_AReconcileStuckOnTheMeetingLockIsLogged is the diagnosis of a kick that never rotates: while the
// room-event follower waits for a meeting's lock, no event of any room reaches a roster, and before this log
// nothing said so. A kick is published while the test holds the meeting's lock: the log must name the room, the
// stuck reconcile and what holds the lock; once the lock is released the reconcile completes.
func TestFollower_AReconcileStuckOnTheMeetingLockIsLogged(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := memstore.New(ctx, memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const room = "stuck"
	if _, err := store.Put(ctx, room, "owner|x", rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	p, err := store.Admit(ctx, rooms.Admission{Room: room, Subject: "bob|x", Name: "Bob", Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := New(ctx, Options{SigningKey: key, Membership: nobodyIsMember{}, Rooms: store, Audit: discardAudit{},
		Logger: zap.New(core), stuckAfter: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.lockMeeting(ctx, room, "held_by_test", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Remove(ctx, room, p.ID, false); err != nil {
		t.Fatal(err)
	}
	var stuck []observer.LoggedEntry
	for deadline := time.Now().Add(time.Minute); len(stuck) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			m.unlock()
			t.Fatalf("no log says the follower is stuck; logged: %v", logs.All())
		}
		stuck = logs.FilterMessageSnippet("reconcile stuck").All()
	}
	f := stuck[0].ContextMap()
	if f["room"] != room || f["lock_held_by"] != "held_by_test" || stuck[0].Level != zapcore.ErrorLevel {
		t.Fatalf("the stuck reconcile's log does not name the room and the lock's holder: %v %v", stuck[0].Level, f)
	}
	m.unlock()
	// Released, the reconcile goes on: the room has nobody left, so its meeting ends.
	for deadline := time.Now().Add(time.Minute); h.existing(room) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reconcile never went on once the lock was released")
		}
	}
}
