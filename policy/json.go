package policy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Input and Decision are written into every admission's audit record. The
// audit log used to encode them by reflection, which cost about as much CPU
// as the decision itself; these hand-written encoders produce exactly the
// bytes encoding/json produces for the same values (a corpus and a fuzz
// test compare them), so records, hashes and replays do not change.

// MarshalJSON encodes the input as encoding/json would, without reflection.
func (in Input) MarshalJSON() ([]byte, error) { return in.AppendJSON(make([]byte, 0, 1024)) }

// AppendJSON appends the input's JSON encoding (MarshalJSON's bytes) to b.
func (in *Input) AppendJSON(b []byte) ([]byte, error) {
	id, r := &in.Identity, &in.Room
	b = append(b, `{"identity":{"iss":`...)
	b = appendString(b, id.Iss)
	b = append(b, `,"sub":`...)
	b = appendString(b, id.Sub)
	b = append(b, `,"email":`...)
	b = appendString(b, id.Email)
	b = append(b, `,"email_verified":`...)
	b = strconv.AppendBool(b, id.EmailVerified)
	b = append(b, `,"name":`...)
	b = appendString(b, id.Name)
	b = append(b, `,"groups":`...)
	b = appendStrings(b, id.Groups)
	b = append(b, `,"acr":`...)
	b = appendString(b, id.ACR)
	b = append(b, `,"amr":`...)
	b = appendStrings(b, id.AMR)
	b = append(b, `,"auth_time":`...)
	b = strconv.AppendInt(b, id.AuthTime, 10)
	b = append(b, `,"via":`...)
	b = appendString(b, id.Via)

	b = append(b, `},"room":{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"exists":`...)
	b = strconv.AppendBool(b, r.Exists)
	b = append(b, `,"owner":`...)
	b = appendString(b, r.Owner)
	b = append(b, `,"capacity":`...)
	b = strconv.AppendInt(b, int64(r.Capacity), 10)
	b = append(b, `,"occupancy":`...)
	b = strconv.AppendInt(b, int64(r.Occupancy), 10)
	b = append(b, `,"locked":`...)
	b = strconv.AppendBool(b, r.Locked)
	b = append(b, `,"lobby_enabled":`...)
	b = strconv.AppendBool(b, r.LobbyEnabled)
	b = append(b, `,"host_present":`...)
	b = strconv.AppendBool(b, r.HostPresent)
	b = append(b, `,"passcode_required":`...)
	b = strconv.AppendBool(b, r.PasscodeRequired)
	b = append(b, `,"passcode_ok":`...)
	b = strconv.AppendBool(b, r.PasscodeOK)
	b = append(b, `,"e2ee_required":`...)
	b = strconv.AppendBool(b, r.E2EERequired)
	b = append(b, `,"tags":`...)
	b = appendStrings(b, r.Tags)
	b = append(b, `,"banned":`...)
	b = strconv.AppendBool(b, r.Banned)

	b = append(b, `},"device":{"key_registered":`...)
	b = strconv.AppendBool(b, in.Device.KeyRegistered)
	b = append(b, `,"key_fingerprint":`...)
	b = appendString(b, in.Device.KeyFingerprint)
	b = append(b, `,"pq":`...)
	b = strconv.AppendBool(b, in.Device.PQ)

	b = append(b, `},"request":{"time":"`...)
	var err error
	// time.Time's MarshalJSON is this, and fails the same way (a year
	// outside 0–9999).
	if b, err = in.Request.Time.AppendText(b); err != nil {
		return nil, err
	}
	b = append(b, `","ip":`...)
	b = appendString(b, in.Request.IP)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, in.Request.UserAgent)
	b = append(b, `,"method":`...)
	b = appendString(b, in.Request.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, in.Request.Path)
	b = append(b, `,"origin":`...)
	b = appendString(b, in.Request.Origin)

	h := &in.History
	b = append(b, `},"history":{"window_seconds":`...)
	b = strconv.AppendInt(b, int64(h.WindowSeconds), 10)
	b = append(b, `,"identity":`...)
	b = appendCounters(b, h.Identity)
	b = append(b, `,"ip":`...)
	b = appendCounters(b, h.IP.Counters)
	b = b[:len(b)-1]
	b = append(b, `,"trusted":`...)
	b = strconv.AppendBool(b, h.IP.Trusted)
	b = append(b, `,"limited":`...)
	b = strconv.AppendBool(b, h.IP.Limited)
	b = append(b, `},"room":{"passcode_failures":`...)
	b = strconv.AppendInt(b, int64(h.Room.PasscodeFailures), 10)
	b = append(b, `,"passcode_attack":`...)
	b = strconv.AppendBool(b, h.Room.PasscodeAttack)
	return append(b, "}}}"...), nil
}

func appendCounters(b []byte, c Counters) []byte {
	b = append(b, `{"join_attempts":`...)
	b = strconv.AppendInt(b, int64(c.JoinAttempts), 10)
	b = append(b, `,"join_failures":`...)
	b = strconv.AppendInt(b, int64(c.JoinFailures), 10)
	b = append(b, `,"passcode_failures":`...)
	b = strconv.AppendInt(b, int64(c.PasscodeFailures), 10)
	return append(b, '}')
}

// MarshalJSON encodes the decision as encoding/json would, without
// reflection but for the obligations, a small map of arbitrary values.
func (d Decision) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, d.Allow)
	b = append(b, `,"lobby":`...)
	b = strconv.AppendBool(b, d.Lobby)
	b = append(b, `,"member":`...)
	b = strconv.AppendBool(b, d.Member)
	b = append(b, `,"role":`...)
	b = appendString(b, d.Role)
	b = append(b, `,"reasons":`...)
	b = appendStrings(b, d.Reasons)
	b = append(b, `,"user_message":`...)
	b = appendString(b, d.UserMessage)
	b = append(b, `,"ttl_seconds":`...)
	b = strconv.AppendInt(b, int64(d.TTLSeconds), 10)
	if len(d.Obligations) > 0 {
		b = append(b, `,"obligations":`...)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		// The caller's encoder applies its own HTML escaping to what we
		// return; escaping here would force it on callers that turned it
		// off.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d.Obligations); err != nil {
			return nil, err
		}
		b = append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
	}
	b = append(b, `,"decision_id":`...)
	b = appendString(b, d.DecisionID)
	b = append(b, `,"revision":`...)
	b = appendString(b, d.Revision)
	return append(b, '}'), nil
}

// appendStrings encodes a list; nil is null, as encoding/json writes it.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding without HTML escaping
// (the caller's encoder adds that when it is on): invalid UTF-8 becomes
// U+FFFD, control characters are escaped (\b, \f, \n, \r, \t by name),
// and U+2028 and U+2029 are escaped for JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
