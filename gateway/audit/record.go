package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The line format (docs/audit.md, "Record format"):
//
//	{"seq":S,"ts":"T","event":"E","prev":"P"[,"node":"N"][,MEMBERS][,"sig":"G"],"hash":"H"}\n
//
// H = hex(SHA-256(line without its trailing `,"hash":"H"}` + "}")): the hash
// covers the exact bytes written, so verifying never re-encodes JSON.
// G (checkpoints only) = base64(Ed25519(key, checkpointDomain || line without
// `,"sig":"G","hash":"H"}` + "}")).

const (
	tsLayout         = "2006-01-02T15:04:05.000000000Z"
	hashLen          = sha256.Size
	hashSuffixLen    = len(`,"hash":"`) + 2*hashLen + len(`"}`)
	sigB64Len        = 88 // base64.StdEncoding.EncodedLen(ed25519.SignatureSize)
	sigMemberLen     = len(`,"sig":"`) + sigB64Len + len(`"`)
	maxEventLen      = 64
	checkpointDomain = "meetguard.audit.checkpoint.v1\n"
)

// MaxRecordBytes is the largest record the log writes or the readers accept.
const MaxRecordBytes = 1 << 20

var zeroHash [hashLen]byte

// appendRecord appends one complete line (with its newline) to dst and
// returns the grown slice and the record's hash. node (a ValidNodeID, or ""
// for none) names the gateway node whose chain this is. members is a list of
// JSON object members without braces, or empty. A non-nil signer makes the
// record a signed checkpoint.
func appendRecord(dst []byte, seq uint64, ts time.Time, event, node string, prev *[hashLen]byte, members []byte, signer ed25519.PrivateKey) ([]byte, [hashLen]byte) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = ts.UTC().AppendFormat(dst, tsLayout)
	dst = append(dst, `","event":"`...)
	dst = append(dst, event...)
	dst = append(dst, `","prev":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, '"')
	if node != "" {
		dst = append(dst, `,"node":"`...)
		dst = append(dst, node...)
		dst = append(dst, '"')
	}
	if len(members) > 0 {
		dst = append(dst, ',')
		dst = append(dst, members...)
	}
	if signer != nil {
		dst = append(dst, '}')
		sig := ed25519.Sign(signer, checkpointMessage(dst[start:]))
		dst = dst[:len(dst)-1]
		dst = append(dst, `,"sig":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, sig)
		dst = append(dst, '"')
	}
	dst = append(dst, '}')
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1]
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, "\"}\n"...)
	return dst, sum
}

func checkpointMessage(body []byte) []byte {
	msg := make([]byte, 0, len(checkpointDomain)+len(body))
	return append(append(msg, checkpointDomain...), body...)
}

// header is what the verifier needs from one line, parsed without decoding
// the members.
type header struct {
	seq   uint64
	ts    []byte // tsLayout, unparsed
	event []byte
	prev  [hashLen]byte
	hash  [hashLen]byte
	// hashed is the line up to (excluding) the hash member; the record's
	// hash is SHA-256(hashed + "}").
	hashed []byte
	// signed is, for checkpoints, the line up to the sig member; the
	// signature covers checkpointDomain + signed + "}".
	signed []byte
	sig    []byte
}

func (h header) isCheckpoint() bool { return string(h.event) == EventCheckpoint }

// errMalformed is wrapped by every parse error.
var errMalformed = errors.New("not a well-formed audit record")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// parseHeader parses one line (without its newline). It checks the fixed
// prefix and suffix byte by byte and that the whole line is valid JSON; it
// does not check the hash or signature.
func parseHeader(line []byte) (header, error) {
	var h header
	if len(line) > MaxRecordBytes {
		return h, malformed("record is longer than %d bytes", MaxRecordBytes)
	}
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return h, malformed(`does not start with {"seq":`)
	}
	n := 0
	for n < len(rest) && n < 20 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || (rest[0] == '0') {
		return h, malformed("seq is not a positive integer without leading zeros")
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return h, malformed("seq: %v", err)
	}
	h.seq = seq
	rest, ok = bytes.CutPrefix(rest[n:], []byte(`,"ts":"`))
	if !ok || len(rest) < len(tsLayout) {
		return h, malformed("missing ts after seq")
	}
	h.ts = rest[:len(tsLayout)]
	if !tsShape(h.ts) {
		return h, malformed("ts %q is not %s", h.ts, tsLayout)
	}
	rest, ok = bytes.CutPrefix(rest[len(tsLayout):], []byte(`","event":"`))
	if !ok {
		return h, malformed("missing event after ts")
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || !validEventName(rest[:end]) {
		return h, malformed("event is not a valid event name")
	}
	h.event = rest[:end]
	rest, ok = bytes.CutPrefix(rest[end:], []byte(`","prev":"`))
	if !ok || len(rest) < 2*hashLen+1 {
		return h, malformed("missing prev after event")
	}
	if err := decodeHexHash(&h.prev, rest[:2*hashLen]); err != nil {
		return h, malformed("prev: %v", err)
	}
	if rest[2*hashLen] != '"' {
		return h, malformed("prev is not %d hex digits", 2*hashLen)
	}
	membersStart := len(line) - len(rest) + 2*hashLen + 1

	if len(line)-hashSuffixLen < membersStart {
		return h, malformed("missing hash")
	}
	suffix := line[len(line)-hashSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(`,"hash":"`)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return h, malformed(`does not end with ,"hash":"…"}`)
	}
	if err := decodeHexHash(&h.hash, suffix[len(`,"hash":"`):len(`,"hash":"`)+2*hashLen]); err != nil {
		return h, malformed("hash: %v", err)
	}
	h.hashed = line[:len(line)-hashSuffixLen]
	if h.isCheckpoint() {
		if len(h.hashed)-sigMemberLen < membersStart {
			return h, malformed("checkpoint has no sig")
		}
		sigMember := h.hashed[len(h.hashed)-sigMemberLen:]
		if !bytes.HasPrefix(sigMember, []byte(`,"sig":"`)) || sigMember[len(sigMember)-1] != '"' {
			return h, malformed("checkpoint sig is not the last member before hash")
		}
		sig := make([]byte, ed25519.SignatureSize)
		n, err := base64.StdEncoding.Decode(sig, sigMember[len(`,"sig":"`):len(sigMember)-1])
		if err != nil || n != ed25519.SignatureSize {
			return h, malformed("checkpoint sig is not a base64 Ed25519 signature")
		}
		h.sig = sig
		h.signed = h.hashed[:len(h.hashed)-sigMemberLen]
	}
	// The members are not checked for JSON validity here: the hash (and
	// the checkpoint signatures) bind the exact bytes, which only matters
	// for integrity; ParseEntry rejects a record that is not JSON.
	return h, nil
}

// tsShape checks the fixed layout of ts without parsing it (the hot path
// of Verify); ParseEntry parses it.
func tsShape(ts []byte) bool {
	if len(ts) != len(tsLayout) {
		return false
	}
	for i, c := range ts {
		switch l := tsLayout[i]; l {
		case '-', 'T', ':', '.', 'Z':
			if c != l {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// decodeHexHash accepts lower-case hex only, so each hash has one spelling.
func decodeHexHash(dst *[hashLen]byte, src []byte) error {
	if len(src) != 2*hashLen {
		return fmt.Errorf("want %d hex digits", 2*hashLen)
	}
	for i := range dst {
		hi, lo := lowerHex[src[2*i]], lowerHex[src[2*i+1]]
		if hi > 15 || lo > 15 {
			return errors.New("not lower-case hex")
		}
		dst[i] = hi<<4 | lo
	}
	return nil
}

// lowerHex maps '0'-'9' and 'a'-'f' to their values, everything else to 0xff.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// validEventName: lower-case dotted words, e.g. "admission.decision".
func validEventName[T string | []byte](name T) bool {
	if len(name) == 0 || len(name) > maxEventLen || name[0] < 'a' || name[0] > 'z' || name[len(name)-1] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c == '.' && name[i-1] != '.':
		default:
			return false
		}
	}
	return true
}

// hashOf computes a record's hash from its header.
func hashOf(h *header, scratch []byte) ([hashLen]byte, []byte) {
	scratch = append(append(scratch[:0], h.hashed...), '}')
	return sha256.Sum256(scratch), scratch
}

// checkSignature reports whether a checkpoint's signature verifies with pub.
func checkSignature(h *header, pub ed25519.PublicKey) bool {
	body := make([]byte, 0, len(checkpointDomain)+len(h.signed)+1)
	body = append(append(append(body, checkpointDomain...), h.signed...), '}')
	return ed25519.Verify(pub, body, h.sig)
}

// checkpointMembers are the members of an audit.checkpoint record.
type checkpointMembers struct {
	KeyID  string `json:"key_id"`
	Every  int    `json:"every"`
	Reason string `json:"reason"`
}

// Checkpoint reasons.
const (
	reasonGenesis  = "genesis"  // first record of a new log
	reasonCount    = "count"    // CheckpointEvery records since the last one
	reasonInterval = "interval" // CheckpointInterval elapsed
	reasonRotate   = "rotate"   // last record of a rotated file
	reasonOpen     = "open"     // log reopened with records after the last checkpoint
	reasonClose    = "close"    // clean shutdown: last record of the log
)

func appendCheckpointMembers(dst []byte, keyID string, every int, reason string) []byte {
	dst = append(dst, `"key_id":"`...)
	dst = append(dst, keyID...)
	dst = append(dst, `","every":`...)
	dst = strconv.AppendInt(dst, int64(every), 10)
	dst = append(dst, `,"reason":"`...)
	dst = append(dst, reason...)
	return append(dst, '"')
}

func parseTS(ts []byte) time.Time {
	t, _ := time.Parse(tsLayout, string(ts))
	return t
}

// jsonUnmarshalObject decodes a record from its hashed part (the line
// without the hash member and closing brace).
func jsonUnmarshalObject(hashed []byte, v any) error {
	b := make([]byte, 0, len(hashed)+1)
	return json.Unmarshal(append(append(b, hashed...), '}'), v)
}
