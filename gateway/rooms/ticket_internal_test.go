package rooms

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseTicket feeds the body decoder arbitrary bytes, as if the MAC
// check did not exist: it must not panic, must fail with ErrTicketInvalid,
// and whatever it accepts must re-encode to exactly the same bytes (one
// encoding per ticket).
func FuzzParseTicket(f *testing.F) {
	w := ticketWire{ticket: Ticket{Room: "room-1", Participant: NewParticipantID(), Role: RoleViewer}}
	f.Add(w.appendBody(nil, 3))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{0xff}, ticketFixedLen+3))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseTicket(b)
		if err != nil {
			if !errors.Is(err, ErrTicketInvalid) {
				t.Fatalf("error %v does not wrap ErrTicketInvalid", err)
			}
			return
		}
		role, ok := roleCode(got.ticket.Role)
		if !ok {
			t.Fatalf("parsed an unknown role %q", got.ticket.Role)
		}
		if again := got.appendBody(nil, role); !bytes.Equal(again, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, again)
		}
	})
}
