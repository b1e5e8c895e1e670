package rooms

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPasscode_WaitsForAFreeSlotOnlyAsLongAsItsContext(t *testing.T) {
	p, err := NewPasscodes(PasscodeOptions{Params: PasscodeParams{MemoryKiB: 64, Time: 1, Threads: 1}, MaxConcurrent: 1, RememberFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.Hash(t.Context(), "1")
	p.slots <- struct{}{} // another check holds the only slot
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Verify(ctx, h, "1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with every slot busy = %v, want DeadlineExceeded", err)
	}
	<-p.slots
	if ok, err := p.Verify(t.Context(), h, "1"); !ok || err != nil {
		t.Fatalf("Verify once the slot is free = %v, %v", ok, err)
	}
}
