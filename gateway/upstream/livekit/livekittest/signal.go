package livekittest

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Join is what a test asserts on in LiveKit's join response.
type Join struct {
	Room           string
	Identity       string
	Name           string
	CanSubscribe   bool
	CanPublish     bool
	CanPublishData bool
}

// Field numbers from livekit_rtc.proto and livekit_models.proto.
const (
	signalJoin     = 1  // SignalResponse.join
	signalLeave    = 8  // SignalResponse.leave
	joinRoom       = 1  // JoinResponse.room
	joinSelf       = 2  // JoinResponse.participant
	roomName       = 2  // Room.name
	partIdentity   = 2  // ParticipantInfo.identity
	partName       = 9  // ParticipantInfo.name
	partPermission = 11 // ParticipantInfo.permission
	permSubscribe  = 1  // ParticipantPermission.can_subscribe
	permPublish    = 2
	permData       = 3
)

// ErrNotJoin means a signalling message is not a join response.
var ErrNotJoin = errors.New("livekittest: not a join response")

// ParseJoin reads a binary SignalResponse that must be a join response.
func ParseJoin(msg []byte) (Join, error) {
	join, ok, err := field(msg, signalJoin)
	if err != nil {
		return Join{}, err
	}
	if !ok {
		return Join{}, ErrNotJoin
	}
	var j Join
	if room, ok, err := field(join, joinRoom); err != nil {
		return Join{}, err
	} else if ok {
		name, _, err := field(room, roomName)
		if err != nil {
			return Join{}, err
		}
		j.Room = string(name)
	}
	self, ok, err := field(join, joinSelf)
	if err != nil || !ok {
		return Join{}, fmt.Errorf("livekittest: join response without participant: %v", err)
	}
	ident, _, err := field(self, partIdentity)
	if err != nil {
		return Join{}, err
	}
	name, _, err := field(self, partName)
	if err != nil {
		return Join{}, err
	}
	j.Identity, j.Name = string(ident), string(name)
	perm, _, err := field(self, partPermission)
	if err != nil {
		return Join{}, err
	}
	if j.CanSubscribe, err = boolField(perm, permSubscribe); err != nil {
		return Join{}, err
	}
	if j.CanPublish, err = boolField(perm, permPublish); err != nil {
		return Join{}, err
	}
	if j.CanPublishData, err = boolField(perm, permData); err != nil {
		return Join{}, err
	}
	return j, nil
}

// IsLeave reports whether a binary SignalResponse is a leave request (what
// the server sends a participant it removes).
func IsLeave(msg []byte) bool {
	_, ok, err := field(msg, signalLeave)
	return err == nil && ok
}

// field returns the bytes of the last length-delimited field num.
func field(b []byte, num protowire.Number) ([]byte, bool, error) {
	var out []byte
	found := false
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil, false, protowire.ParseError(l)
			}
			out, found = v, true
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil, false, protowire.ParseError(l)
		}
		b = b[l:]
	}
	return out, found, nil
}

func boolField(b []byte, num protowire.Number) (bool, error) {
	v := false
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return false, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.VarintType {
			x, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return false, protowire.ParseError(l)
			}
			v = x != 0
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return false, protowire.ParseError(l)
		}
		b = b[l:]
	}
	return v, nil
}
