package eventhub

import (
	"context"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

func TestHub_DeliversToEverySubscriberInOrder(t *testing.T) {
	var h Hub
	ctx := t.Context()
	a, b := h.Subscribe(ctx), h.Subscribe(ctx)
	for i := range 3 {
		h.Publish(rooms.Event{Kind: rooms.EventLocked, Room: string(rune('a' + i))})
	}
	for _, ch := range []<-chan rooms.Event{a, b} {
		for i := range 3 {
			if e := <-ch; e.Room != string(rune('a'+i)) {
				t.Fatalf("event %d: room %q", i, e.Room)
			}
		}
	}
}

func TestHub_SlowSubscriberIsCutOffNotSkipped(t *testing.T) {
	var h Hub
	slow := h.Subscribe(t.Context())
	fast := h.Subscribe(t.Context())
	for range Buffer + 1 {
		h.Publish(rooms.Event{Kind: rooms.EventRemoved})
		<-fast
	}
	n := 0
	for range slow {
		n++
	}
	if n != Buffer {
		t.Fatalf("slow subscriber got %d events before its channel closed, want %d", n, Buffer)
	}
	if h.Len() != 1 {
		t.Fatalf("live subscribers = %d, want 1 (the fast one)", h.Len())
	}
}

func TestHub_ContextEndClosesChannel(t *testing.T) {
	var h Hub
	ctx, cancel := context.WithCancel(t.Context())
	ch := h.Subscribe(ctx)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("got an event, want closed channel")
		}
	case <-time.After(time.Second):
		t.Fatal("channel still open a second after its context ended")
	}
	if h.Len() != 0 {
		t.Fatalf("live subscribers = %d, want 0", h.Len())
	}
}

func TestHub_DropClosesEverySubscriber(t *testing.T) {
	var h Hub
	chs := []<-chan rooms.Event{h.Subscribe(t.Context()), h.Subscribe(t.Context())}
	h.Drop()
	for i, ch := range chs {
		if _, ok := <-ch; ok {
			t.Fatalf("subscriber %d still open after Drop", i)
		}
	}
	h.Publish(rooms.Event{}) // must not panic on closed channels
}
