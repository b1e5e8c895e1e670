package rooms

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"time"
)

// A ticket is the proof, on every room-path request through the proxy, that
// the caller was admitted. Wire format (version 1), base64url without
// padding:
//
//	version(1)=1 | expires unix seconds(8, big endian) | role(1) |
//	participant id(16) | binding tag(16) | room length(1) | room |
//	HMAC-SHA256 over everything before it(32)
//
// The binding tag is HMAC(binding key, session id)[:16]: the ticket names
// its session without revealing it, so a ticket copied out of a browser is
// useless on another session. The MAC and binding keys are derived from the
// configured key with HKDF-SHA256, one label each.
const (
	ticketVersion   = 1
	ticketFixedLen  = 1 + 8 + 1 + idBytes + 16 + 1
	ticketMACLen    = sha256.Size
	ticketMinLen    = ticketFixedLen + 1 + ticketMACLen
	ticketMaxLen    = ticketFixedLen + MaxRoomIDLen + ticketMACLen
	ticketMaxEncLen = (ticketMaxLen*8 + 5) / 6
)

// Ticket is what a verified ticket says.
type Ticket struct {
	Room        string
	Participant ParticipantID
	Role        Role
	ExpiresAt   time.Time
}

// TicketOptions configure Tickets.
type TicketOptions struct {
	// Key signs new tickets: at least 32 random bytes, the same on every
	// node.
	Key []byte
	// PreviousKeys still verify, for rotation without logging everyone
	// out of their rooms.
	PreviousKeys [][]byte
	// TTL is how long a ticket lasts. Default 5m; at most 1h.
	TTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Tickets issues and verifies tickets.
type Tickets struct {
	keys []ticketKey // keys[0] signs
	ttl  time.Duration
	now  func() time.Time
}

// ticketKey holds one key's two HMACs, each keyed once and reused through a
// pool: keying one (hmac.New) was half the allocations of an issue, and
// every proxied request on a room path verifies a ticket.
type ticketKey struct{ mac, bind *hmacPool }

// hmacPool hands out HMAC-SHA256 instances keyed with one key, reset.
type hmacPool struct{ p sync.Pool }

func newHMACPool(key []byte) *hmacPool {
	return &hmacPool{p: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// sum appends HMAC(key, b) to dst.
func (h *hmacPool) sum(dst, b []byte) []byte {
	m := h.p.Get().(hash.Hash)
	m.Write(b)
	dst = m.Sum(dst)
	m.Reset()
	h.p.Put(m)
	return dst
}

// NewTickets checks the options and derives the keys.
func NewTickets(o TicketOptions) (*Tickets, error) {
	if o.TTL == 0 {
		o.TTL = 5 * time.Minute
	}
	if o.TTL < time.Second || o.TTL > time.Hour {
		return nil, invalid("tickets.ttl", "must be between 1s and 1h")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := &Tickets{ttl: o.TTL, now: o.Now}
	for i, k := range append([][]byte{o.Key}, o.PreviousKeys...) {
		if len(k) < 32 {
			field := "tickets.key"
			if i > 0 {
				field = fmt.Sprintf("tickets.previous_keys[%d]", i-1)
			}
			return nil, invalid(field, "must be at least 32 bytes")
		}
		mac, err := hkdf.Key(sha256.New, k, nil, "meetguard rooms ticket mac v1", 32)
		if err != nil {
			return nil, err
		}
		bind, err := hkdf.Key(sha256.New, k, nil, "meetguard rooms ticket binding v1", 32)
		if err != nil {
			return nil, err
		}
		t.keys = append(t.keys, ticketKey{mac: newHMACPool(mac), bind: newHMACPool(bind)})
	}
	return t, nil
}

// Issue signs a ticket for participant p of room, bound to binding (the
// session id, or for bearer callers the token's stable id).
func (t *Tickets) Issue(room string, p Participant, binding string) (token string, expires time.Time, err error) {
	if err := ValidateRoomID(room); err != nil {
		return "", time.Time{}, err
	}
	if err := p.ID.Validate(); err != nil {
		return "", time.Time{}, err
	}
	role, ok := roleCode(p.Role)
	if !ok {
		return "", time.Time{}, invalid("role", "must be host, participant or viewer")
	}
	if binding == "" {
		return "", time.Time{}, invalid("binding", "empty")
	}
	expires = t.now().Add(t.ttl).Truncate(time.Second)
	k := t.keys[0]
	w := ticketWire{ticket: Ticket{Room: room, Participant: p.ID, Role: p.Role, ExpiresAt: expires}}
	copy(w.binding[:], k.bindingTag(binding))
	b := w.appendBody(make([]byte, 0, ticketFixedLen+len(room)+ticketMACLen), role)
	b = k.mac.sum(b, b) // the MAC goes into the room reserved after the body
	return base64.RawURLEncoding.EncodeToString(b), expires, nil
}

// Verify accepts token only if one of the keys signed it, it has not
// expired, it is for room and it is bound to binding. Errors wrap
// ErrTicketInvalid or ErrTicketExpired. Whether the participant is still
// admitted is the store's answer (Store.Touch), not the ticket's.
func (t *Tickets) Verify(token, room, binding string) (Ticket, error) {
	if len(token) > ticketMaxEncLen {
		return Ticket{}, fmt.Errorf("%w: too long", ErrTicketInvalid)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < ticketMinLen || len(raw) > ticketMaxLen {
		return Ticket{}, fmt.Errorf("%w: malformed", ErrTicketInvalid)
	}
	body, mac := raw[:len(raw)-ticketMACLen], raw[len(raw)-ticketMACLen:]
	var key *ticketKey
	for i := range t.keys {
		if hmac.Equal(t.keys[i].sign(body), mac) {
			key = &t.keys[i]
			break
		}
	}
	if key == nil {
		return Ticket{}, fmt.Errorf("%w: bad signature", ErrTicketInvalid)
	}
	w, err := parseTicket(body)
	if err != nil {
		return Ticket{}, err
	}
	if !hmac.Equal(w.binding[:], key.bindingTag(binding)) {
		return Ticket{}, fmt.Errorf("%w: bound to another session", ErrTicketInvalid)
	}
	if w.ticket.Room != room {
		return Ticket{}, fmt.Errorf("%w: for another room", ErrTicketInvalid)
	}
	if !t.now().Before(w.ticket.ExpiresAt) {
		return Ticket{}, ErrTicketExpired
	}
	return w.ticket, nil
}

// TTL is how long tickets from Issue last.
func (t *Tickets) TTL() time.Duration { return t.ttl }

func (k ticketKey) sign(b []byte) []byte {
	var out [sha256.Size]byte
	return k.mac.sum(out[:0], b)
}

func (k ticketKey) bindingTag(binding string) []byte {
	var out [sha256.Size]byte
	return k.bind.sum(out[:0], []byte(binding))[:16]
}

type ticketWire struct {
	ticket  Ticket
	binding [16]byte
}

// appendBody encodes everything but the MAC; role is the ticket's role code.
func (w ticketWire) appendBody(b []byte, role byte) []byte {
	b = append(b, ticketVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(w.ticket.ExpiresAt.Unix()))
	b = append(b, role)
	pid, _ := base64.RawURLEncoding.DecodeString(string(w.ticket.Participant))
	b = append(b, pid...)
	b = append(b, w.binding[:]...)
	b = append(b, byte(len(w.ticket.Room)))
	return append(b, w.ticket.Room...)
}

// parseTicket decodes a ticket body (without its MAC). It only runs on
// bodies whose MAC verified, but it is written, and fuzzed, as if it did
// not.
func parseTicket(b []byte) (ticketWire, error) {
	var w ticketWire
	if len(b) < ticketFixedLen+1 {
		return w, fmt.Errorf("%w: short", ErrTicketInvalid)
	}
	if b[0] != ticketVersion {
		return w, fmt.Errorf("%w: unknown version %d", ErrTicketInvalid, b[0])
	}
	exp := binary.BigEndian.Uint64(b[1:9])
	if exp > 1<<40 {
		return w, fmt.Errorf("%w: expiry out of range", ErrTicketInvalid)
	}
	role, ok := roleFromCode(b[9])
	if !ok {
		return w, fmt.Errorf("%w: unknown role", ErrTicketInvalid)
	}
	pid := ParticipantID(base64.RawURLEncoding.EncodeToString(b[10 : 10+idBytes]))
	copy(w.binding[:], b[10+idBytes:10+idBytes+16])
	n := int(b[ticketFixedLen-1])
	room := b[ticketFixedLen:]
	if n != len(room) {
		return w, fmt.Errorf("%w: room length", ErrTicketInvalid)
	}
	if err := ValidateRoomID(string(room)); err != nil {
		return w, fmt.Errorf("%w: %w", ErrTicketInvalid, err)
	}
	w.ticket = Ticket{Room: string(room), Participant: pid, Role: role, ExpiresAt: time.Unix(int64(exp), 0)}
	return w, nil
}

func roleCode(r Role) (byte, bool) {
	switch r {
	case RoleHost:
		return 1, true
	case RoleParticipant:
		return 2, true
	case RoleViewer:
		return 3, true
	}
	return 0, false
}

func roleFromCode(c byte) (Role, bool) {
	switch c {
	case 1:
		return RoleHost, true
	case 2:
		return RoleParticipant, true
	case 3:
		return RoleViewer, true
	}
	return "", false
}
