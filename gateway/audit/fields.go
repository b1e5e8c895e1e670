package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Redacted replaces the value of a member that must never be written.
const Redacted = "[redacted]"

// secretKeyWords mark a member key as naming a secret wherever they appear in
// it (after lower-casing and dropping '-', '_' and '.'): "id_token",
// "Set-Cookie", "client_secret", "roomPasscode" are all redacted.
var secretKeyWords = [...][]byte{
	[]byte("token"), []byte("cookie"), []byte("passcode"), []byte("password"), []byte("passwd"),
	[]byte("passphrase"), []byte("secret"), []byte("authorization"), []byte("credential"),
	[]byte("privatekey"), []byte("apikey"), []byte("bearer"), []byte("csrf"),
}

// reservedKeys are written by the log itself.
var reservedKeys = map[string]bool{"seq": true, "ts": true, "event": true, "prev": true, "node": true, "hash": true, "sig": true}

// ErrReservedKey is returned by Record for a field named like one of the
// members the log writes itself (seq, ts, event, prev, node, hash, sig).
var ErrReservedKey = errors.New("audit: field key is reserved")

// ErrInvalidEvent is returned by Record for an event name that is not
// lower-case dotted words or that starts with "audit.".
var ErrInvalidEvent = errors.New("audit: invalid event name")

// ErrRecordTooLarge is returned by Record for a record over MaxRecordBytes.
var ErrRecordTooLarge = errors.New("audit: record too large")

// harmlessSecretFact keeps facts about a secret that are not the secret:
// a boolean (passcode_required, passcode_ok) and a counter
// (passcode_failures). Policy replay needs them; a number under any other
// secret-sounding key (a numeric passcode) is still redacted.
func harmlessSecretFact(key string, v any) bool {
	switch v.(type) {
	case bool:
		return true
	case float64, int64, json.Number:
		k := strings.ToLower(key)
		return strings.Contains(k, "failure") || strings.Contains(k, "count") || strings.Contains(k, "attempt")
	}
	return false
}

// fieldValue is the Go value of a zap field of a simple type, or nil.
func fieldValue(f zap.Field) any {
	switch f.Type {
	case zapcore.BoolType:
		return f.Integer == 1
	case zapcore.Int64Type, zapcore.Int32Type, zapcore.Int16Type, zapcore.Int8Type,
		zapcore.Uint64Type, zapcore.Uint32Type, zapcore.Uint16Type, zapcore.Uint8Type:
		return f.Integer
	}
	return nil
}

func isSecretKey[T string | []byte](key T) bool {
	var stack [64]byte
	k := stack[:0]
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
			k = append(k, c+'a'-'A')
		case c == '-' || c == '_' || c == '.':
		default:
			k = append(k, c)
		}
	}
	if len(k) < 4 { // the shortest word is "csrf"
		return false
	}
	// One pass trying only the words that start with each letter: every
	// member of every record is checked, and thirteen separate searches
	// cost more than the rest of the member's encoding.
	for i := 0; i+4 <= len(k); i++ {
		for _, w := range secretWordsByFirst[k[i]] {
			if bytes.HasPrefix(k[i:], w) {
				return true
			}
		}
	}
	return false
}

// secretWordsByFirst is secretKeyWords by first letter.
var secretWordsByFirst = func() (t [256][][]byte) {
	for _, w := range secretKeyWords {
		t[w[0]] = append(t[w[0]], w)
	}
	return t
}()

// credentialPattern finds secrets under innocent keys and inside longer
// text such as error messages: JWTs (three base64url segments, header
// starting "eyJ") and Authorization header values.
var credentialPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+`)

// redactCredentials returns v with every credential replaced by Redacted,
// and whether it changed anything. The cheap checks keep the regexp off the
// hot path for ordinary values.
func redactCredentials(v string) (string, bool) {
	if !mayHoldCredential(v) {
		return v, false
	}
	out := credentialPattern.ReplaceAllStringFunc(v, func(m string) string {
		if strings.HasPrefix(m, "eyJ") {
			return Redacted
		}
		scheme, _, _ := strings.Cut(m, " ")
		return scheme + " " + Redacted
	})
	return out, out != v
}

// mayHoldCredential reports whether v contains "eyJ", "bearer" or "basic"
// in any case, in one pass (every string of every record is checked).
func mayHoldCredential[T string | []byte](v T) bool {
	for i := 0; i+3 <= len(v); i++ {
		switch v[i] | 0x20 {
		case 'e':
			if hasPrefixFold(v[i:], "eyj") {
				return true
			}
		case 'b':
			if hasPrefixFold(v[i:], "bearer") || hasPrefixFold(v[i:], "basic") {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix,
// ignoring case.
func hasPrefixFold[T string | []byte](s T, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for j := 0; j < len(prefix); j++ {
		if s[j]|0x20 != prefix[j] {
			return false
		}
	}
	return true
}

// HashIdentity is how a member listed in Options.HashedFields is written:
// "sha256:" and the first 16 bytes of SHA-256 of the value, in hex. It is a
// pseudonym, not anonymity (anyone can hash a guessed address), chosen so an
// auditor can still find one person's records (`query --subject` hashes its
// argument too).
func HashIdentity(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// fieldEncoder turns zap fields into the members of one record, applying the
// redaction and hashing rules. It is safe for concurrent use.
type fieldEncoder struct {
	enc    zapcore.Encoder
	hashed map[string]bool // lower-cased keys
}

func newFieldEncoder(hashedFields []string) *fieldEncoder {
	hashed := make(map[string]bool, len(hashedFields))
	for _, k := range hashedFields {
		hashed[strings.ToLower(k)] = true
	}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		SkipLineEnding: true,
		EncodeTime: func(t time.Time, pe zapcore.PrimitiveArrayEncoder) {
			pe.AppendString(t.UTC().Format(time.RFC3339Nano))
		},
		EncodeDuration: zapcore.StringDurationEncoder,
	})
	return &fieldEncoder{enc: enc, hashed: hashed}
}

// encode returns the members (without braces) and the keys it redacted.
// Top-level members are cleaned field by field; nested values (objects,
// arrays, reflected structs, errors, stringers) are encoded first and
// scanned, and only when the scan finds something are they rebuilt, so a
// clean record pays for one linear scan.
func (e *fieldEncoder) encode(fields []zap.Field) ([]byte, []string, error) {
	clean, redacted, opaque, err := e.sanitize(fields, false)
	if err != nil {
		return nil, nil, err
	}
	b, free, err := e.render(clean)
	if err != nil {
		return nil, nil, err
	}
	if opaque && e.needsDeepClean(b) {
		free()
		if clean, redacted, _, err = e.sanitize(fields, true); err != nil {
			return nil, nil, err
		}
		if b, free, err = e.render(clean); err != nil {
			return nil, nil, err
		}
	}
	defer free()
	if len(b) > MaxRecordBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, len(b))
	}
	if len(b) <= 2 {
		return nil, redacted, nil
	}
	return bytes.Clone(b[1 : len(b)-1]), redacted, nil
}

func (e *fieldEncoder) render(fields []zap.Field) ([]byte, func(), error) {
	buf, err := e.enc.EncodeEntry(zapcore.Entry{}, fields)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encode fields: %w", err)
	}
	b := buf.Bytes()
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		buf.Free()
		return nil, nil, fmt.Errorf("audit: encode fields: unexpected encoder output")
	}
	return b, buf.Free, nil
}

// needsDeepClean scans an encoded object for what sanitize(deep) would
// change below the top level: a secret or hashed key inside a nested
// object, or a credential in any string.
func (e *fieldEncoder) needsDeepClean(b []byte) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			j, escaped := i+1, false
			for ; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
					escaped = true
				}
			}
			if j >= len(b) {
				return true // not ours to judge: take the slow path
			}
			s := b[i+1 : j]
			if escaped {
				var str string
				if json.Unmarshal(b[i:j+1], &str) != nil {
					return true
				}
				s = []byte(str)
			}
			if j+1 < len(b) && b[j+1] == ':' {
				if depth >= 2 && (isSecretKey(s) && !harmlessEncodedFact(s, b[j+2:]) || len(e.hashed) > 0 && e.hashed[strings.ToLower(string(s))]) {
					return true
				}
			} else if mayHoldCredential(s) {
				if _, changed := redactCredentials(string(s)); changed {
					return true
				}
			}
			i = j
		}
	}
	return false
}

// harmlessEncodedFact is harmlessSecretFact for an encoded member: key s
// and the encoding that follows its colon. Policy inputs carry such facts
// (passcode_required, passcode_failures) in every admission record, which
// would otherwise send each one through the deep clean only to change
// nothing.
func harmlessEncodedFact(key, value []byte) bool {
	if len(value) == 0 {
		return false
	}
	switch c := value[0]; {
	case bytes.HasPrefix(value, []byte("true")), bytes.HasPrefix(value, []byte("false")):
		return true
	case c == '-' || c >= '0' && c <= '9':
		return harmlessSecretFact(string(key), json.Number(""))
	}
	return false
}

// sanitize returns fields with secrets redacted and identity fields hashed,
// copying the slice only when something changes. Without deep, values that
// zap renders from opaque types are left alone and reported in opaque.
func (e *fieldEncoder) sanitize(fields []zap.Field, deep bool) (out []zap.Field, redacted []string, opaque bool, err error) {
	out = fields
	copied := false
	set := func(i int, f zap.Field) {
		if !copied {
			out = append([]zap.Field(nil), fields...)
			copied = true
		}
		out[i] = f
	}
	for i, f := range fields {
		if reservedKeys[strings.ToLower(f.Key)] {
			return nil, nil, false, fmt.Errorf("%w: %q", ErrReservedKey, f.Key)
		}
		switch {
		case f.Type == zapcore.SkipType:
		case f.Key != "" && isSecretKey(f.Key) && !harmlessSecretFact(f.Key, fieldValue(f)):
			set(i, zap.String(f.Key, Redacted))
			redacted = append(redacted, f.Key)
		case f.Key != "" && e.hashed[strings.ToLower(f.Key)]:
			v, err := e.hashedValue(f)
			if err != nil {
				return nil, nil, false, err
			}
			set(i, zap.String(f.Key, v))
		case f.Type == zapcore.StringType:
			if v, changed := redactCredentials(f.String); changed {
				set(i, zap.String(f.Key, v))
				redacted = append(redacted, f.Key)
			}
		case f.Type == zapcore.ObjectMarshalerType, f.Type == zapcore.ArrayMarshalerType,
			f.Type == zapcore.ReflectType, f.Type == zapcore.InlineMarshalerType,
			f.Type == zapcore.StringerType, f.Type == zapcore.ByteStringType, f.Type == zapcore.ErrorType:
			// Inline members land at the top level, where the scan does
			// not look at keys: always clean them.
			if !deep && f.Type != zapcore.InlineMarshalerType {
				opaque = true
				continue
			}
			nf, keys, changed, err := e.sanitizeNested(f)
			if err != nil {
				return nil, nil, false, err
			}
			if changed {
				set(i, nf)
				redacted = append(redacted, keys...)
			}
		}
	}
	return out, redacted, opaque, nil
}

// sanitizeNested renders a structured field to JSON, walks it, and replaces
// the field by the cleaned JSON when anything had to change.
func (e *fieldEncoder) sanitizeNested(f zap.Field) (zap.Field, []string, bool, error) {
	m := zapcore.NewMapObjectEncoder()
	f.AddTo(m)
	var v any = m.Fields
	if f.Type != zapcore.InlineMarshalerType {
		v = m.Fields[f.Key]
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return f, nil, false, fmt.Errorf("audit: field %q: %w", f.Key, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return f, nil, false, fmt.Errorf("audit: field %q: %w", f.Key, err)
	}
	var redacted []string
	tree, changed := e.clean(tree, &redacted)
	if f.Type == zapcore.InlineMarshalerType {
		obj, _ := tree.(map[string]any)
		for k := range obj {
			if reservedKeys[strings.ToLower(k)] {
				return f, nil, false, fmt.Errorf("%w: %q", ErrReservedKey, k)
			}
		}
		if !changed {
			return f, nil, false, nil
		}
		return zap.Inline(rawObject(obj)), redacted, true, nil
	}
	if !changed {
		return f, nil, false, nil
	}
	return zap.Any(f.Key, tree), redacted, true, nil
}

// clean walks a decoded JSON tree.
func (e *fieldEncoder) clean(v any, redacted *[]string) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		changed := false
		for k, child := range t {
			switch {
			case isSecretKey(k) && !harmlessSecretFact(k, child):
				t[k] = Redacted
				*redacted = append(*redacted, k)
				changed = true
			case e.hashed[strings.ToLower(k)]:
				if s, ok := child.(string); ok {
					t[k] = HashIdentity(s)
				} else {
					b, _ := json.Marshal(child)
					t[k] = HashIdentity(string(b))
				}
				changed = true
			default:
				nc, c := e.clean(child, redacted)
				if c {
					t[k] = nc
					changed = true
				}
			}
		}
		return t, changed
	case []any:
		changed := false
		for i, child := range t {
			if nc, c := e.clean(child, redacted); c {
				t[i] = nc
				changed = true
			}
		}
		return t, changed
	case string:
		if v, changed := redactCredentials(t); changed {
			*redacted = append(*redacted, "(value)")
			return v, true
		}
	}
	return v, false
}

func (e *fieldEncoder) hashedValue(f zap.Field) (string, error) {
	if f.Type == zapcore.StringType {
		return HashIdentity(f.String), nil
	}
	m := zapcore.NewMapObjectEncoder()
	f.AddTo(m)
	v := m.Fields[f.Key]
	if s, ok := v.(string); ok {
		return HashIdentity(s), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("audit: field %q: %w", f.Key, err)
	}
	return HashIdentity(string(b)), nil
}

// rawObject re-adds the members of a cleaned inline object.
type rawObject map[string]any

func (o rawObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, k := range slices.Sorted(maps.Keys(o)) {
		if err := enc.AddReflected(k, o[k]); err != nil {
			return err
		}
	}
	return nil
}
