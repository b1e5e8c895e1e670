package e2ee

import (
	"slices"
)

// State is where a client is in the protocol (docs/e2ee.md section 7).
type State int

// Client states.
const (
	StateUnregistered State = iota
	StateWaiting            // registered, not yet in a roster
	StateMember
	StateRemoved
	StateHalted // an alarm was raised; nothing more is accepted
)

func (s State) String() string {
	return [...]string{"unregistered", "waiting", "member", "removed", "halted"}[s]
}

// Member is one roster entry (one device) as a client has verified it.
type Member struct {
	Credential  Hash
	Identity    Identity
	DisplayName string
	Role        Role
	Fingerprint string // short name of the device key, shown next to the device
	KEM         KEM    // from the epoch's commit; zero until the client holds it
	Index       int    // position in the roster, the KID's sender index
	Self        bool
	// OwnDevice marks another device of this client's own identity; Confirmed says whether it is accepted
	// (added while this device was present, listed in OwnDevices, or confirmed with ConfirmDevice).
	OwnDevice bool
	Confirmed bool
}

// ChangeKind names a roster change a client reports.
type ChangeKind string

// Roster changes reported in Status.Changes.
const (
	ChangeLocked         ChangeKind = "locked"
	ChangeUnlocked       ChangeKind = "unlocked"
	ChangeAdded          ChangeKind = "added"
	ChangeRemoved        ChangeKind = "removed"
	ChangeOwnDeviceAdded ChangeKind = "own_device_added"
)

// Change is one roster change this client saw between two epochs. A UI shows every lock change and every
// member added while the room was unlocked (docs/e2ee.md section 7).
type Change struct {
	Epoch       uint64
	Kind        ChangeKind
	Member      Hash
	DisplayName string
	Fingerprint string
	Unlocked    bool // for ChangeAdded: the room was not locked when the member was added
}

// maxChanges bounds the change history a client keeps.
const maxChanges = 256

// Status is a snapshot of what the client has verified.
type Status struct {
	State      State
	Epoch      uint64
	Generation uint8 // of the epoch secret in use
	Roster     Hash
	Locked     bool
	Members    []Member
	// SecurityCode is derived from the epoch authenticator; empty until the client holds the epoch secret.
	// Compare it only with peers showing the same epoch and generation.
	SecurityCode string
	// Changes is every lock change and membership change seen so far, oldest first (at most 256).
	Changes []Change
	// Unconfirmed lists the fingerprints of devices under this client's identity that were in the room before
	// it and are not confirmed: a UI asks the user "is this your device?" (ConfirmDevice or RejectDevice).
	Unconfirmed []string
	// Err is why the client cannot follow the meeting or holds no key for the head epoch, if it is for a reason
	// other than waiting: the gateway refused its last roster request (a member whose ticket or admission the
	// gateway no longer accepts: errors.Is(Err, ErrNotMember); an unreachable gateway), or a classic-KEM member
	// in a room where this client requires post-quantum keys. Run keeps retrying a refused roster; Err clears
	// with the next roster the gateway serves.
	Err error
}

// Devices groups the members by identity, in roster order of each identity's first device.
func (s Status) Devices() [][]Member {
	var out [][]Member
	at := map[Identity]int{}
	for _, m := range s.Members {
		i, ok := at[m.Identity]
		if !ok {
			i = len(out)
			at[m.Identity] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
	}
	return out
}

// record appends a change; the caller holds c.mu.
func (c *Client) record(ch Change) {
	c.changes = append(c.changes, ch)
	if len(c.changes) > maxChanges {
		c.changes = slices.Delete(c.changes, 0, len(c.changes)-maxChanges)
	}
}

// Status returns what the client has verified so far.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{State: c.state, Changes: slices.Clone(c.changes), Err: c.lastErr}
	if c.rosterErr != nil {
		st.Err = c.rosterErr
	}
	if c.head == nil {
		return st
	}
	st.Epoch, st.Roster, st.Locked = c.head.Epoch, c.head.Hash(), c.head.Locked
	if c.current != nil {
		st.SecurityCode = SecurityCode(c.current.keys.auth)
		st.Generation = c.current.keys.generation
	}
	for i, h := range c.head.Members {
		m := Member{Credential: h, Index: i, Self: c.cred != nil && h == c.cred.Hash()}
		if cred := c.creds[h]; cred != nil {
			m.Identity, m.DisplayName, m.Role, m.Fingerprint = cred.Identity, cred.DisplayName, cred.Role, cred.Fingerprint()
			m.OwnDevice = !m.Self && cred.Identity == c.identity
			m.Confirmed = m.OwnDevice && c.confirmed[h]
			if c.pending[h] {
				st.Unconfirmed = append(st.Unconfirmed, m.Fingerprint)
			}
		}
		if c.current != nil && i < len(c.current.kems) {
			m.KEM = c.current.kems[i]
		}
		st.Members = append(st.Members, m)
	}
	return st
}
